"""The compared models of one network: baseline, Mixup, CutMix and RM (paper Table 10's rows).

:func:`derive_variants` turns one RM config into the four model configs that differ only in
their training recipe; the cost report, the CUDA sync check and the effective-class count
compare them.
"""
import copy
import os.path as osp
import re
from collections import OrderedDict
from typing import Optional, Tuple

import torch

from mmrm.utils.config import model_config, to_plain

__all__ = [
    'VARIANTS', 'VARIANT_NAMES', 'DEFAULT_MIXUP', 'DEFAULT_CUTMIX', 'RM_AUGMENT', 'augments_of',
    'is_rm_augment', 'derive_variants', 'build_model', 'build_train_loader', 'num_classes_of',
    'input_channels_of'
]

VARIANTS = ('baseline', 'mixup', 'cutmix', 'rm')
VARIANT_NAMES = dict(baseline='Baseline', mixup='+ Mixup', cutmix='+ CutMix', rm='+ RM')
#: what the repository's Mixup / CutMix configs use (mmpretrain's ImageNet settings)
DEFAULT_MIXUP = dict(type='Mixup', alpha=1.0)
DEFAULT_CUTMIX = dict(type='CutMix', alpha=1.0)
RM_AUGMENT = 'RecursiveMixBatchAugment'


def augments_of(model: dict):
    augs = (model.get('train_cfg') or {}).get('augments')
    if augs is None:
        return []
    return list(augs) if isinstance(augs, (list, tuple)) else [augs]


def is_rm_augment(aug) -> bool:
    return isinstance(aug, dict) and aug.get('type') in (RM_AUGMENT, f'mmrm.{RM_AUGMENT}')


def _set_soft_loss(head: dict, soft: bool) -> None:
    loss = head.get('loss')
    if isinstance(loss, dict) and str(loss.get('type', '')).endswith('CrossEntropyLoss'):
        loss['use_soft'] = soft


def _sibling_augment(config_path: Optional[str], kind: str) -> Optional[dict]:
    """``model.train_cfg.augments`` of the sibling config ``..._<kind>.py`` of an RM config."""
    if not config_path:
        return None
    sibling = re.sub(r'_rm(-[^/_]*)?\.py$', f'_{kind}.py', config_path)
    if sibling == config_path or not osp.isfile(sibling):
        return None
    from mmengine.config import Config
    try:
        augs = augments_of(model_config(Config.fromfile(sibling)))
    except Exception:  # a broken sibling must not break the report
        return None
    return augs[0] if len(augs) == 1 and isinstance(augs[0], dict) else None


def derive_variants(cfg, config_path: Optional[str] = None, mixup: Optional[dict] = None,
                    cutmix: Optional[dict] = None) -> Tuple['OrderedDict[str, dict]', dict]:
    """The four models of Table 10 from one RM config (same backbone, neck and head).

    - ``baseline``: ``ImageClassifier``, no batch augment, hard-label CE, no ``roi_head``;
    - ``mixup`` / ``cutmix``: the baseline with soft CE and mmpretrain's ``Mixup`` / ``CutMix``
      as ``train_cfg.augments``; the augment is taken from the sibling config
      (``*_rm.py`` -> ``*_mixup.py`` / ``*_cutmix.py``) when there is one, else alpha 1 (what the
      repository's configs use), unless ``mixup`` / ``cutmix`` is given;
    - ``rm``: the config's own model (``RMClassifier``). A config without an RM model gets
      ``RMClassifier`` with the default RM augment and ``RoIConsistencyHead``.

    Returns ``(variants, sources)``: model dicts keyed by :data:`VARIANTS`, and where each
    Mixup / CutMix augment came from.
    """
    model = model_config(cfg)
    base = copy.deepcopy(model)
    base['type'] = 'ImageClassifier'
    base.pop('roi_head', None)
    train_cfg = dict(base.get('train_cfg') or {})
    train_cfg.pop('augments', None)
    train_cfg.pop('probs', None)
    base['train_cfg'] = train_cfg or None
    pre = base.get('data_preprocessor')
    if isinstance(pre, dict):
        pre.pop('batch_augments', None)
        if str(pre.get('type', '')).endswith('RMDataPreprocessor'):
            pre.pop('type')
    if isinstance(base.get('head'), dict):
        _set_soft_loss(base['head'], False)

    sources = {}
    variants = OrderedDict(baseline=base)
    for kind, given, default in (('mixup', mixup, DEFAULT_MIXUP), ('cutmix', cutmix,
                                                                   DEFAULT_CUTMIX)):
        aug, src = given, 'given'
        if aug is None:
            aug, src = _sibling_augment(config_path, kind), 'sibling config'
        if aug is None:
            aug, src = copy.deepcopy(default), 'default'
        m = copy.deepcopy(base)
        m['train_cfg'] = dict(train_cfg, augments=copy.deepcopy(aug))
        if isinstance(m.get('head'), dict):
            _set_soft_loss(m['head'], True)
        variants[kind] = m
        sources[kind] = (src, aug)

    if model.get('type') in ('RMClassifier', 'mmrm.RMClassifier'):
        rm = copy.deepcopy(model)
    else:
        rm = copy.deepcopy(base)
        rm['type'] = 'RMClassifier'
        augs = [a for a in augments_of(model) if is_rm_augment(a)]
        rm['train_cfg'] = dict(train_cfg, augments=augs[0] if augs else dict(type=RM_AUGMENT))
        rm.setdefault('roi_head', dict(type='RoIConsistencyHead'))
        if isinstance(rm.get('data_preprocessor'), dict):
            rm['data_preprocessor'].pop('type', None)
        if isinstance(rm.get('head'), dict):
            _set_soft_loss(rm['head'], True)
    variants['rm'] = rm
    return variants, sources


def build_model(model_cfg: dict, device: str = 'cpu') -> torch.nn.Module:
    from mmpretrain.registry import MODELS
    model = MODELS.build(copy.deepcopy(model_cfg))
    return model.to(device)


def build_train_loader(cfg, seed: Optional[int] = 0, batch_size: Optional[int] = None,
                       num_workers: int = 0):
    """The config's training dataloader (its dataset, pipeline and sampler), in this process
    by default (``num_workers=0``), optionally with another batch size. ``seed`` seeds the
    sampler and the random generators the pipeline draws from (reproducible pictures)."""
    from mmengine.runner import Runner, set_random_seed
    if seed is not None:
        set_random_seed(seed)
    loader_cfg = to_plain(cfg['train_dataloader'])
    loader_cfg['num_workers'] = num_workers
    loader_cfg['persistent_workers'] = False
    if num_workers == 0:
        loader_cfg.pop('prefetch_factor', None)
    if batch_size:
        loader_cfg['batch_size'] = batch_size
    return Runner.build_dataloader(loader_cfg, seed=seed)


def num_classes_of(model_cfg: dict) -> int:
    head = model_cfg.get('head') or {}
    k = head.get('num_classes') or (model_cfg.get('data_preprocessor') or {}).get('num_classes')
    if not k:
        raise ValueError('cannot tell the number of classes: set model.head.num_classes')
    return int(k)


def input_channels_of(model_cfg: dict) -> int:
    return int((model_cfg.get('backbone') or {}).get('in_channels', 3))
