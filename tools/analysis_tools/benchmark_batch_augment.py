"""Time the RecursiveMix batch augment against mmpretrain's CutMix (and Mixup) on one tensor.

Runs the ops interleaved (A B A B ...) in one process, so the ratios survive a noisy machine,
and prints the median time per call and the ratio to CutMix for each shape. On a shared CPU use
``--threads 1``: with several intra-op threads competing for busy cores the times of these
sub-millisecond ops mostly measure OpenMP waiting.

    python tools/analysis_tools/benchmark_batch_augment.py [--shapes 64x3x32x32 32x3x224x224]
        [--repeats 200] [--device cpu|cuda] [--threads N]
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
from mmrm.utils import shape_type  # noqa: E402


def bench(shape, repeats, device, num_classes=100, seed=0):
    """Median seconds per call of each op on the same input; fresh input copies per call."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    x = torch.randn(shape, device=device)
    y = F.one_hot(torch.randint(0, num_classes, (shape[0], ), device=device),
                  num_classes).float()
    ops = {'CutMix': CutMix(alpha=1.0), 'Mixup': Mixup(alpha=1.0),
           'RecursiveMix': RecursiveMixBatchAugment(alpha=0.5)}
    ops['RecursiveMix'](x.clone(), y)  # give RM a history, as in training
    times = {name: [] for name in ops}
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    for _ in range(repeats):
        for name, op in ops.items():
            inp = x.clone()  # every op works in place on a fresh batch, as in training
            sync()
            t0 = time.perf_counter()
            op(inp, y)
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', nargs='+', type=shape_type('NxCxHxW'),
                        default=[(64, 3, 32, 32), (32, 3, 224, 224)])
    parser.add_argument('--repeats', type=int, default=200)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'device {args.device}, {torch.get_num_threads()} CPU threads, '
          f'{args.repeats} interleaved rounds')
    rows = []
    print(f'{"shape":>16} {"op":>13} {"median ms":>10} {"vs CutMix":>10}')
    for shape in args.shapes:
        med = bench(shape, args.repeats, args.device)
        for name, sec in med.items():
            ratio = sec / med['CutMix']
            rows.append((shape, name, sec, ratio))
            print(f'{"x".join(map(str, shape)):>16} {name:>13} {sec * 1e3:10.3f} {ratio:10.2f}')
    return rows


if __name__ == '__main__':
    main()
