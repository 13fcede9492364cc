"""Per-operator cost of training steps (``torch.profiler``) and where two models differ."""
from collections import OrderedDict
from typing import Callable, Dict

import torch

from .timing import sync_device

__all__ = ['profile_train_steps', 'format_profile_diff']


def profile_train_steps(models: 'OrderedDict[str, torch.nn.Module]', optim_wrappers: dict,
                        batch_factory: Callable[[], dict], steps: int = 5,
                        device: str = 'cpu') -> Dict[str, Dict[str, dict]]:
    """Per-operator cost of ``steps`` training steps per model, from ``torch.profiler``.

    Returns ``{model: {op: dict(count, cpu_us, dev_us)}}``, per step: calls, self host time and
    self device time (0 on CPU) in microseconds. One untimed step runs first."""
    from torch.profiler import ProfilerActivity, profile
    cuda = str(device).startswith('cuda')
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    out = OrderedDict()
    for name, model in models.items():
        model.train_step(batch_factory(), optim_wrappers[name])
        batches = [batch_factory() for _ in range(steps)]
        sync_device(device)
        with profile(activities=acts) as prof:
            for data in batches:
                model.train_step(data, optim_wrappers[name])
            sync_device(device)
        stats = {}
        for e in prof.key_averages():
            dev = getattr(e, 'self_device_time_total', None)
            if dev is None:
                dev = getattr(e, 'self_cuda_time_total', 0)
            stats[e.key] = dict(count=e.count / steps, cpu_us=e.self_cpu_time_total / steps,
                                dev_us=(dev / steps) if cuda else 0.)
        out[name] = stats
    return out


def format_profile_diff(profiles: dict, a: str = 'rm', b: str = 'cutmix', top: int = 12,
                        key: str = 'cpu_us') -> str:
    """Markdown table of the operators with the largest extra self time of ``a`` over ``b``
    per step (``key``: 'cpu_us' host time or 'dev_us' device time), and the totals."""
    pa, pb = profiles[a], profiles[b]
    zero = dict(count=0., cpu_us=0., dev_us=0.)
    rows = []
    for op in set(pa) | set(pb):
        ra, rb = pa.get(op, zero), pb.get(op, zero)
        rows.append((ra[key] - rb[key], op, ra, rb))
    rows.sort(key=lambda r: -r[0])
    total_a = sum(r[key] for r in pa.values())
    total_b = sum(r[key] for r in pb.values())
    what = 'host' if key == 'cpu_us' else 'device'
    lines = [f'self {what} time per step: {a} {total_a / 1e3:.3f} ms, {b} {total_b / 1e3:.3f} ms, '
             f'difference {(total_a - total_b) / 1e3:+.3f} ms; largest contributions:', '',
             f'| op | {a} - {b} (us) | {a} calls | {b} calls |', '| --- | ---: | ---: | ---: |']
    for diff, op, ra, rb in rows[:top]:
        lines.append(f"| {op} | {diff:+.1f} | {ra['count']:g} | {rb['count']:g} |")
    return '\n'.join(lines)
