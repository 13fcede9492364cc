"""Count host-device synchronisations of the RecursiveMix training path on CUDA.

A synchronisation (``.item()``, ``bool(tensor)``, a blocking copy, ``nonzero`` ...) makes the
host wait for the GPU and stalls the launch queue. RecursiveMix is built to add none: the box is
drawn on the host, the history is a device tensor, lambda reaches the loss as a host float (a
scale, never a device tensor) and the labels and RoI weights reach the device by non-blocking
copies from page-locked memory.
This module checks that with ``torch.cuda.set_sync_debug_mode('warn')``: every synchronising
call then raises a warning whose location is the Python line that made it, so the sites can be
counted per training step and attributed (inside ``mmrm`` or in the libraries below it).

Used by ``tools/analysis_tools/cuda_sync_check.py``.
"""
import os.path as osp
import sys
import warnings
from collections import Counter, OrderedDict
from typing import Callable, Dict

import torch

#: substring of the warning torch raises in sync-debug mode
SYNC_WARNING = 'synchronizing CUDA operation'
_MMRM_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def short_site(filename: str, lineno: int) -> str:
    """``pkg/sub/file.py:line``: the path relative to its import root (this package,
    a ``site-packages`` folder or the longest matching ``sys.path`` entry)."""
    path = osp.abspath(filename)
    if path.startswith(_MMRM_ROOT + osp.sep):
        return f'mmrm/{osp.relpath(path, _MMRM_ROOT)}:{lineno}'
    if 'site-packages' + osp.sep in path:
        return f"{path.split('site-packages' + osp.sep, 1)[1]}:{lineno}"
    for root in sorted((osp.abspath(p) for p in sys.path if p), key=len, reverse=True):
        if path.startswith(root + osp.sep):
            return f'{osp.relpath(path, root)}:{lineno}'
    return f'{path}:{lineno}'


def is_mmrm_site(site: str) -> bool:
    return site.startswith('mmrm/')


def record_syncs(fn: Callable[[], object], repeats: int = 1) -> Counter:
    """Call ``fn`` ``repeats`` times and count the synchronising calls by site.

    On CUDA the sync-debug mode is switched to 'warn' for the calls (and back afterwards);
    every warning carrying :data:`SYNC_WARNING` counts once at its ``file:line``. Other
    warnings are passed on unchanged.
    """
    sites = Counter()
    others = []
    use_cuda = torch.cuda.is_available()
    prev = torch.cuda.get_sync_debug_mode() if use_cuda else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        if use_cuda:
            torch.cuda.set_sync_debug_mode('warn')
        try:
            for _ in range(repeats):
                fn()
        finally:
            if use_cuda:
                torch.cuda.set_sync_debug_mode(prev)
    for w in caught:
        if SYNC_WARNING in str(w.message):
            sites[short_site(w.filename, w.lineno)] += 1
        else:
            others.append(w)
    for w in others:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return sites


def train_step_syncs(models: 'OrderedDict[str, torch.nn.Module]', optim_wrappers: dict,
                     batch_factory: Callable[[], dict], steps: int = 3,
                     warmup: int = 2) -> Dict[str, dict]:
    """Synchronisations per full training step (``model.train_step``: data preprocessor with
    the batch augment, forward, loss, backward, optimizer step) for each model.

    ``warmup`` steps run first without counting (lazy initialisation, optimizer state, the RM
    history). Fresh batches are made before the counted region. Returns, per model,
    ``per_step`` (float), ``in_mmrm`` (count inside the mmrm package) and ``sites``
    (``{file:line: count}`` over all counted steps).
    """
    out = OrderedDict()
    for name, model in models.items():
        for _ in range(warmup):
            model.train_step(batch_factory(), optim_wrappers[name])
        batches = [batch_factory() for _ in range(steps)]
        it = iter(batches)
        sites = record_syncs(lambda: model.train_step(next(it), optim_wrappers[name]), steps)
        total = sum(sites.values())
        out[name] = dict(per_step=total / steps,
                         in_mmrm=sum(v for s, v in sites.items() if is_mmrm_site(s)),
                         sites=dict(sites.most_common()))
    return out
