"""Config helpers shared by the tools: load a config the way the tools do, plain dicts."""
import copy
from typing import Optional

__all__ = ['load_config', 'prepare_scope', 'to_plain', 'model_config']


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile`` + ``--cfg-options`` + the config's custom imports + default scope.

    A config that needs what this environment lacks (mmcv's compiled ops, mmdet, mmseg: a
    detection / segmentation config in the classification-only ``.venv`` of ``make demo``) is
    refused with :class:`mmrm.utils.stack.StackMissing`, naming the command that completes it.
    """
    from .stack import load_config_checked
    cfg = load_config_checked(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    prepare_scope(cfg)
    return cfg


def prepare_scope(cfg=None) -> None:
    """Import mmrm and the config's ``custom_imports``; set the default registry scope."""
    import mmrm  # noqa: F401  (registers the RM components)
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg is not None and cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    scope = cfg.get('default_scope', 'mmpretrain') if cfg is not None else 'mmpretrain'
    init_default_scope(scope or 'mmpretrain')


def to_plain(obj):
    """ConfigDict / nested containers -> plain dicts and lists (picklable, deep-copied)."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return copy.deepcopy(obj)


def model_config(cfg) -> dict:
    """The model dict as the Runner builds it (top-level ``data_preprocessor`` merged in)."""
    model = to_plain(cfg['model'])
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', to_plain(cfg['data_preprocessor']))
    return model
