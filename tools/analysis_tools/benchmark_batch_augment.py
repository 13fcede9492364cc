"""Time the RecursiveMix batch augment against mmpretrain's CutMix (and Mixup) on one tensor.

Runs the ops interleaved in one process, every round each op once on a fresh copy of the same
batch, and prints the median time per call and, per op, the median over rounds of its time
divided by CutMix's time in the same round (with the 25-75 % range of those ratios), so the
ratio survives a noisy machine. The order of the ops rotates from round to round (``--order
rotate``, the default), so no op always runs after the same one (Mixup moves a whole batch
through memory and leaves the next op's data and code out of the caches); ``--order fixed``
keeps CutMix, Mixup, RM. ``--runs K`` repeats the whole measurement K times in the same process
and prints the spread of the per-run ratios. The header names the CPU and the thread count. On
a shared CPU use ``--threads 1``: with several intra-op threads competing for busy cores the
times of these sub-millisecond ops mostly measure OpenMP waiting.

    python tools/analysis_tools/benchmark_batch_augment.py [--shapes 64x3x32x32 32x3x224x224]
        [--repeats 200] [--runs 1] [--order rotate|fixed] [--device cpu|cuda] [--threads N]
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmpretrain.models.utils.batch_augments import CutMix, Mixup  # noqa: E402

from mmrm.models import RecursiveMixBatchAugment  # noqa: E402
from mmrm.utils import cpu_model, shape_type  # noqa: E402

REFERENCE = 'CutMix'


def build_ops():
    return {'CutMix': CutMix(alpha=1.0), 'Mixup': Mixup(alpha=1.0),
            'RecursiveMix': RecursiveMixBatchAugment(alpha=0.5)}


def time_rounds(shape, repeats, device, num_classes=100, seed=0, order='rotate'):
    """Seconds of every call of each op, ``repeats`` interleaved rounds on the same input (a
    fresh copy per call, made outside the timed region: the ops work in place)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    x = torch.randn(shape, device=device)
    y = F.one_hot(torch.randint(0, num_classes, (shape[0], ), device=device),
                  num_classes).float()
    ops = build_ops()
    ops['RecursiveMix'](x.clone(), y)  # give RM a history, as in training
    names = list(ops)
    times = {name: [] for name in names}
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    for r in range(repeats):
        shift = r % len(names) if order == 'rotate' else 0
        for name in names[shift:] + names[:shift]:
            inp = x.clone()  # every op works in place on a fresh batch, as in training
            sync()
            t0 = time.perf_counter()
            ops[name](inp, y)
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def summarise(times, reference=REFERENCE):
    """Per op: (median seconds, median of the per-round ratios to ``reference``, their 25 %
    and 75 % quantiles)."""
    out = {}
    for name, ts in times.items():
        ratios = [t / ref for t, ref in zip(ts, times[reference])]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios * 3)
        out[name] = (statistics.median(ts), statistics.median(ratios), q1, q3)
    return out


def bench(shape, repeats, device, num_classes=100, seed=0, order='rotate'):
    """Median seconds per call of each op (kept for callers of the earlier tool)."""
    return {name: s[0] for name, s in
            summarise(time_rounds(shape, repeats, device, num_classes, seed, order)).items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', nargs='+', type=shape_type('NxCxHxW'),
                        default=[(64, 3, 32, 32), (32, 3, 224, 224)])
    parser.add_argument('--repeats', type=int, default=200, help='interleaved rounds per run')
    parser.add_argument('--runs', type=int, default=1,
                        help='repeat the whole measurement this many times in this process')
    parser.add_argument('--order', choices=('rotate', 'fixed'), default='rotate',
                        help='rotate the op order every round (default) or keep it fixed')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.runs < 1:
        parser.error('--repeats and --runs must be at least 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.startswith('cuda'):
        device_name = f'{device} ({torch.cuda.get_device_name(torch.device(device))})'
    else:
        device_name = device
    print(f'device {device_name}, CPU {cpu_model()}, {torch.get_num_threads()} CPU threads, '
          f'torch {torch.__version__}, {args.repeats} interleaved rounds x {args.runs} run(s), '
          f'order {args.order}')
    print(f'{"run":>3} {"shape":>14} {"op":>13} {"median ms":>10} '
          f'{"vs CutMix":>10} {"(25-75 %)":>12}')
    rows = []
    for run in range(args.runs):
        for shape in args.shapes:
            stats = summarise(time_rounds(shape, args.repeats, device, order=args.order))
            for name, (sec, ratio, q1, q3) in stats.items():
                rows.append((shape, name, sec, ratio))
                print(f'{run:>3} {"x".join(map(str, shape)):>14} {name:>13} {sec * 1e3:10.3f} '
                      f'{ratio:10.2f} {f"{q1:.2f}-{q3:.2f}":>12}', flush=True)
    if args.runs > 1:
        print('per-run medians of the per-round ratios to CutMix (median, min-max over runs):')
        for shape in args.shapes:
            for name in stats:
                if name == REFERENCE:
                    continue
                r = [ratio for s, n, _, ratio in rows if s == shape and n == name]
                print(f'    {"x".join(map(str, shape)):>14} {name:>13} {statistics.median(r):.2f}'
                      f' ({min(r):.2f}-{max(r):.2f}) over {len(r)} runs')
    return rows


if __name__ == '__main__':
    main()
