"""What ``torch.compile`` makes of a training step: graphs, graph breaks, (re)compilations.

MMEngine's ``compile=True`` (``Runner._maybe_compile``) replaces ``model.train_step`` by
``torch.compile(model.train_step, **compile_cfg)``, so the data preprocessor, the batch augment,
the forward, the loss and the optimizer step all run under dynamo; :func:`compile_train_step`
does exactly that. :class:`CompileStats` reads dynamo's counters around each step (dynamo's
counters are process-wide: attribute them by running one model's step at a time):

- ``graphs``: graphs compiled (``counters['stats']['unique_graphs']``);
- ``breaks``: graph breaks (``counters['graph_break']``);
- ``frames``: frames dynamo (re)compiled, i.e. cache misses; none after warm-up means every
  step reuses compiled code;
- ``recompiles``: those frame compilations that replaced or added to compiled code of the
  same function because a guard failed (each with dynamo's reason, e.g. a drawn number).
"""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, List

import torch

__all__ = ['compile_train_step', 'dynamo_totals', 'CompileStats']


def compile_train_step(model: torch.nn.Module, **compile_cfg) -> torch.nn.Module:
    """``model.train_step = torch.compile(model.train_step, **compile_cfg)``, as MMEngine."""
    model.train_step = torch.compile(model.train_step, **compile_cfg)
    return model


def _metrics() -> list:
    from torch._dynamo import utils
    return list(utils.get_compilation_metrics())


def dynamo_totals() -> Dict[str, int]:
    """Process-wide dynamo counts so far (see the module docstring)."""
    from torch._dynamo.utils import counters
    return dict(graphs=counters['stats']['unique_graphs'],
                breaks=sum(counters['graph_break'].values()),
                frames=counters['frames']['total'])


class CompileStats:
    """Per-step dynamo counts of one compiled model::

        stats = CompileStats()
        for data in batches:
            with stats.step():
                model.train_step(data, optim_wrapper)
        stats.total('graphs'), stats.after(3, 'recompiles'), stats.recompile_reasons
    """

    KEYS = ('graphs', 'breaks', 'frames', 'recompiles')

    def __init__(self):
        self.steps: List[Dict[str, int]] = []
        self.recompile_reasons: List[str] = []
        from torch._dynamo import utils
        if hasattr(utils, 'set_compilation_metrics_limit'):  # default 64: keep every entry
            utils.set_compilation_metrics_limit(1 << 16)

    @contextmanager
    def step(self):
        before, seen = dynamo_totals(), _metrics()
        try:
            yield
        finally:
            after, now = dynamo_totals(), _metrics()
            known = {id(m) for m in seen}
            reasons = [f'{m.co_name}: {m.recompile_reason}' for m in now
                       if id(m) not in known and getattr(m, 'recompile_reason', None)]
            self.recompile_reasons += reasons
            counts = {k: after[k] - before[k] for k in after}
            counts['recompiles'] = len(reasons)
            self.steps.append(counts)

    def total(self, key: str) -> int:
        return sum(s[key] for s in self.steps)

    def after(self, warmup: int, key: str) -> int:
        """``key`` counted in the steps after the first ``warmup`` ones."""
        return sum(s[key] for s in self.steps[warmup:])

    def summary(self, warmup: int = 3) -> 'OrderedDict[str, int]':
        out = OrderedDict((k, self.total(k)) for k in self.KEYS)
        out.update((f'{k} after step {warmup}', self.after(warmup, k))
                   for k in ('graphs', 'frames', 'recompiles'))
        return out
