"""The effective class number of mixed labels (paper Fig. 8).

How many classes a training target spreads over: per sample, the classes whose label weight is
above a threshold. Every method sees the same loader batches through its own preprocessor.
"""
import copy
from collections import OrderedDict
from typing import List, Optional, Sequence

import numpy as np
import torch

from .variants import VARIANT_NAMES, VARIANTS, augments_of, derive_variants, num_classes_of

__all__ = [
    'DEFAULT_THRESHOLDS', 'count_effective_classes', 'variant_preprocessors', 'effective_classes',
    'format_effective_table'
]

DEFAULT_THRESHOLDS = (1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.3, 0.4)


def count_effective_classes(scores: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """Per sample and threshold, the number of classes whose target is strictly above it:
    ``(N, K)`` scores -> ``(N, len(thresholds))`` integer counts."""
    s = scores.detach().float().cpu()
    th = torch.as_tensor(list(thresholds), dtype=torch.float32)
    return (s.unsqueeze(1) > th.view(1, -1, 1)).sum(-1)


def variant_preprocessors(cfg, config_path: Optional[str] = None,
                          methods: Sequence[str] = VARIANTS) -> 'OrderedDict[str, object]':
    """A ``ClsDataPreprocessor`` of the config (normalisation, classes) per method, each with
    the method's batch augment (the baseline: one-hot labels, no augment)."""
    from mmpretrain.registry import MODELS
    variants, _ = derive_variants(cfg, config_path)
    pres = OrderedDict()
    for name in methods:
        pre_cfg = dict(variants[name].get('data_preprocessor') or {})
        pre_cfg.pop('type', None)
        pre_cfg.pop('batch_augments', None)
        pre_cfg['type'] = 'ClsDataPreprocessor'
        pre_cfg.setdefault('num_classes', num_classes_of(variants[name]))
        augs = augments_of(variants[name])
        if augs:
            pre_cfg['batch_augments'] = dict(augments=augs)
        else:
            pre_cfg['to_onehot'] = True
        pres[name] = MODELS.build(pre_cfg)
    return pres


def effective_classes(preprocessors: 'OrderedDict[str, object]', batches, iters: int,
                      thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                      seed: Optional[int] = 0) -> 'OrderedDict[str, List[float]]':
    """Mean effective class number per method and threshold over ``iters`` loader batches.

    Every batch goes through every method's preprocessor in training mode (each keeps its
    own state, e.g. the RM history), so the methods see the same images and labels. Returns
    ``{method: [mean count per threshold]}`` (mean over samples and iterations).
    """
    if seed is not None:
        np.random.seed(seed)
        torch.manual_seed(seed)
    totals = OrderedDict((name, torch.zeros(len(thresholds), dtype=torch.float64))
                         for name in preprocessors)
    n = 0
    for _, data in zip(range(iters), batches):
        for name, pre in preprocessors.items():
            out = pre(copy.deepcopy(data), True)
            scores = torch.stack([s.gt_score for s in out['data_samples']])
            totals[name] += count_effective_classes(scores, thresholds).sum(0).double()
        n += len(out['data_samples'])
    if n == 0:
        raise ValueError('effective_classes: the loader gave no batch')
    return OrderedDict((name, (t / n).tolist()) for name, t in totals.items())


def format_effective_table(result: dict, thresholds: Sequence[float],
                           markdown: bool = True) -> str:
    names = list(result)
    if markdown:
        lines = ['| threshold | ' + ' | '.join(VARIANT_NAMES.get(n, n) for n in names) + ' |',
                 '| ---: |' + ' ---: |' * len(names)]
        for i, th in enumerate(thresholds):
            lines.append(f'| {th:g} | ' + ' | '.join(f'{result[n][i]:.3f}' for n in names) +
                         ' |')
    else:
        lines = ['threshold,' + ','.join(names)]
        for i, th in enumerate(thresholds):
            lines.append(f'{th:g},' + ','.join(f'{result[n][i]:.6f}' for n in names))
    return '\n'.join(lines)
