"""Check that a downstream config (MMDetection / MMSegmentation) really loads a pretrained
backbone: zero missing, zero unexpected and zero shape-mismatched keys.

MMEngine only *logs* key mismatches of ``init_cfg=dict(type='Pretrained', ...)`` (as a warning
in ``mmengine.runner.checkpoint.load_state_dict``), and MMDetection's PVT ignores ``prefix``
without a word, so a wrong checkpoint silently leaves a backbone random. This module records
every state-dict load made while a model initialises, through the very code path the config
triggers (``model.init_weights()``), and compares keys and shapes itself::

    from mmrm.analysis.downstream import check_backbone_init
    report = check_backbone_init('configs/downstream/mmdet/atss_r50_fpn_1x_coco.py',
                                 checkpoint='work_dirs/resnet50_8xb32_in1k_rm/epoch_300.pth')
    assert report.ok, report

or from the shell (exit status 1 on any mismatch)::

    python tools/analysis_tools/check_backbone_init.py CONFIG [--checkpoint PATH] [--cfg-options ...]

(``--checkpoint`` sets ``model.backbone.init_cfg.checkpoint``: a top-level ``checkpoint=``
variable of a config is substituted when the file is parsed, so overriding the variable with
``--cfg-options checkpoint=...`` does not reach the backbone.)

"""
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch.nn as nn

__all__ = [
    'StateDictLoad', 'BackboneInitReport', 'record_state_dict_loads', 'build_model',
    'check_backbone_init'
]


@dataclass
class StateDictLoad:
    """One ``mmengine.runner.checkpoint.load_state_dict(module, state_dict)`` call.

    Keys are compared strictly (``num_batches_tracked`` included, unlike MMEngine's warning).
    """
    module: nn.Module
    state_dict: Dict
    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    #: ``(key, shape in the checkpoint, shape in the module)``
    mismatched_shapes: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_keys or self.unexpected_keys or self.mismatched_shapes)

    def summary(self, max_keys: int = 5) -> str:
        def head(keys):
            more = f' (+{len(keys) - max_keys} more)' if len(keys) > max_keys else ''
            return f'{len(keys)} {list(keys)[:max_keys]}{more}'
        return (f'{type(self.module).__name__} <- {len(self.state_dict)} keys: '
                f'missing {head(self.missing_keys)}, unexpected {head(self.unexpected_keys)}, '
                f'shape mismatch {head(self.mismatched_shapes)}')


def _compare(module: nn.Module, state_dict: Dict) -> StateDictLoad:
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(module):
        module = module.module
    own = module.state_dict()
    given = {k: v for k, v in state_dict.items()}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    # in the module's order, so the report names the first layers first
    mismatched = [(k, tuple(given[k].shape), tuple(v.shape)) for k, v in own.items()
                  if k in given and hasattr(given[k], 'shape')
                  and tuple(given[k].shape) != tuple(v.shape)]
    return StateDictLoad(module, state_dict, missing, unexpected, mismatched)


@contextmanager
def record_state_dict_loads():
    """Record every call of MMEngine's ``load_state_dict`` and of ``nn.Module.load_state_dict``
    made inside the block.

    Yields the list that receives one :class:`StateDictLoad` per call. The loading itself is
    unchanged (the original function runs with the caller's arguments). Every imported module
    that bound the function by name (``from mmengine.runner.checkpoint import
    load_state_dict``, as ``mmdet.models.backbones.pvt`` does) is patched too, so both
    MMEngine's ``PretrainedInit`` and MMDetection's PVT loader are seen.
    """
    import mmengine.runner.checkpoint as ckpt_mod
    original = ckpt_mod.load_state_dict
    records: List[StateDictLoad] = []

    def recording_load_state_dict(module, state_dict, strict=False, logger=None):
        records.append(_compare(module, state_dict))
        return original(module, state_dict, strict, logger)

    # MMDetection's and MMSegmentation's Swin call ``self.load_state_dict(..., strict=False)``
    original_method = nn.Module.load_state_dict

    def recording_method(module, state_dict, *args, **kwargs):
        records.append(_compare(module, state_dict))
        return original_method(module, state_dict, *args, **kwargs)

    patched = []
    for mod in list(sys.modules.values()):
        namespace = getattr(mod, '__dict__', None)
        if isinstance(namespace, dict) and namespace.get('load_state_dict') is original:
            setattr(mod, 'load_state_dict', recording_load_state_dict)
            patched.append(mod)
    nn.Module.load_state_dict = recording_method
    try:
        yield records
    finally:
        nn.Module.load_state_dict = original_method
        for mod in patched:
            setattr(mod, 'load_state_dict', original)


def build_model(cfg) -> nn.Module:
    """Build ``cfg.model`` in the config's ``default_scope`` (as the Runner does), after its
    ``custom_imports``. ``cfg`` is an ``mmengine.Config`` or a path."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    if not isinstance(cfg, Config):
        cfg = Config.fromfile(str(cfg))
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(cfg.model)


@dataclass
class BackboneInitReport:
    """What ``model.init_weights()`` loaded into ``model.backbone``."""
    model: nn.Module
    #: all loads made during ``init_weights`` (into the backbone or elsewhere)
    loads: List[StateDictLoad]

    @property
    def backbone_loads(self) -> List[StateDictLoad]:
        return [r for r in self.loads if r.module is self.model.backbone]

    @property
    def ok(self) -> bool:
        """Exactly one load, into the backbone, with no key or shape mismatch."""
        return len(self.loads) == 1 and len(self.backbone_loads) == 1 and self.loads[0].ok

    def __str__(self) -> str:
        if not self.loads:
            return 'no state dict was loaded (is init_cfg a Pretrained checkpoint?)'
        lines = [('backbone: ' if r.module is self.model.backbone else 'other module: ')
                 + r.summary() for r in self.loads]
        return '\n'.join(lines)


def check_backbone_init(cfg,
                        checkpoint: Optional[str] = None,
                        cfg_options: Optional[dict] = None) -> BackboneInitReport:
    """Build the config's model and run ``model.init_weights()``, recording what it loads.

    Args:
        cfg: an ``mmengine.Config`` or a config path.
        checkpoint: if given, sets ``model.backbone.init_cfg.checkpoint``.
        cfg_options: merged into the config first (as ``--cfg-options``).
    """
    from mmengine.config import Config
    if not isinstance(cfg, Config):
        cfg = Config.fromfile(str(cfg))
    else:
        cfg = cfg.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if checkpoint is not None:
        cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': str(checkpoint)})
    model = build_model(cfg)
    with record_state_dict_loads() as loads:
        model.init_weights()
    return BackboneInitReport(model, list(loads))
