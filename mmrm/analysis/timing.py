"""Time full training steps of several models, interleaved, on fresh batches."""
import copy
import math
import time
from collections import OrderedDict
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Sequence

import torch

__all__ = ['make_batch_factory', 'build_optim_wrapper', 'sync_device', 'time_train_steps']


def make_batch_factory(batch: int, shape: Sequence[int], num_classes: int,
                       seed: int = 0, pin_memory: bool = False) -> Callable[[], dict]:
    """A function returning a fresh loader-like batch: uint8 images ``(N, C, H, W)`` (as
    ``default_collate`` stacks them, in page-locked memory with ``pin_memory`` as a loader with
    ``pin_memory=True`` gives them) and new ``DataSample`` objects with hard labels."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, *shape), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (batch, ), generator=g).tolist()

    def fresh():
        return dict(inputs=images.clone().pin_memory() if pin_memory else images.clone(),
                    data_samples=[DataSample().set_gt_label(int(v)) for v in labels])

    return fresh


def build_optim_wrapper(model: torch.nn.Module, optim_cfg: Optional[dict], device: str):
    """The config's optimizer (plain ``OptimWrapper`` on CPU); SGD 0.1 / 0.9 without one."""
    from mmengine.optim import build_optim_wrapper as _build
    cfg = copy.deepcopy(optim_cfg) if optim_cfg else dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
    if not str(device).startswith('cuda') and cfg.get('type') in ('AmpOptimWrapper', ):
        cfg['type'] = 'OptimWrapper'
        cfg.pop('loss_scale', None)
        cfg.pop('dtype', None)
    return _build(model, cfg)


def sync_device(device: str) -> None:
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def time_train_steps(models: 'OrderedDict[str, torch.nn.Module]', optim_wrappers: dict,
                     batch_factory: Callable[[], dict], repeats: int, warmup: int = 1,
                     device: str = 'cpu', around: Optional[dict] = None
                     ) -> Dict[str, List[float]]:
    """Seconds per full training step (``model.train_step``: data preprocessor with the batch
    augment, forward, loss, backward, optimizer step), interleaved: every round runs each model
    once in turn (A B C D A B C D ...), so machine load hits all variants alike. A fresh batch
    (made outside the timed region) feeds every step. ``warmup`` rounds are not recorded.
    ``around[name]()`` gives a context manager entered around a step outside the timed region
    (e.g. :meth:`~mmrm.analysis.compile_stats.CompileStats.step`)."""
    times = {name: [] for name in models}
    around = around or {}
    for r in range(warmup + repeats):
        for name, model in models.items():
            data = batch_factory()
            with around[name]() if name in around else nullcontext():
                sync_device(device)
                t0 = time.perf_counter()
                log_vars = model.train_step(data, optim_wrappers[name])
                sync_device(device)
                dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
            if r == warmup + repeats - 1:
                loss = float(log_vars['loss'].detach())
                if not math.isfinite(loss):
                    print(f'warning: {name}: non-finite loss {loss} in the timed steps')
    return times
