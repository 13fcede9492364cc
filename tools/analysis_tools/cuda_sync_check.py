"""Show that the RecursiveMix training path makes no host-device synchronisation (CUDA).

Under ``torch.cuda.set_sync_debug_mode('warn')`` it counts, by Python source line, the
synchronising calls of

1. the batch augments alone on a device tensor (RecursiveMix, CutMix, Mixup), and
2. full training steps (data preprocessor with the batch augment, forward, loss, backward,
   optimizer step) of the baseline / Mixup / CutMix / RM variants of one config (the same four
   models as ``rm_cost_report.py``), fed like a loader with ``pin_memory=True`` feeds them
   (page-locked images, non-blocking copy; ``--no-pin`` for a pageable batch).

It prints the counts with their sites and exits with status 1 if the RM op synchronises, if RM
code (the ``mmrm`` package) synchronises in a training step, or if an RM step (pinned input)
synchronises at all: ``RMDataPreprocessor`` copies labels and inputs without blocking. Needs a
CUDA device.

    python tools/analysis_tools/cuda_sync_check.py configs/rm/resnet50_8xb32_in1k_rm.py \\
        [--batch 32] [--shape 3x224x224] [--steps 3] [--json out.json] \\
        [--cfg-options model.roi_head.roi_backend=mmcv]   # default: matmul, as RM trains
"""
import argparse
import json
import os.path as osp
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

from mmrm.analysis.cuda_sync import is_mmrm_site, record_syncs, train_step_syncs  # noqa: E402
from mmrm.analysis.timing import build_optim_wrapper, make_batch_factory  # noqa: E402
from mmrm.analysis.variants import (build_model, derive_variants,  # noqa: E402
                                    input_channels_of, num_classes_of)
from mmrm.utils import load_config, shape_type, to_plain  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='an RM config (e.g. configs/rm/*_rm.py)')
    parser.add_argument('--batch', type=int, default=32, help='images per training step')
    parser.add_argument('--shape', type=shape_type('CxHxW'), default=None,
                        help='input CxHxW (default: backbone in_channels x 224 x 224)')
    parser.add_argument('--steps', type=int, default=3, help='counted training steps')
    parser.add_argument('--warmup', type=int, default=2, help='uncounted steps first')
    parser.add_argument('--op-shapes', nargs='+', type=shape_type('NxCxHxW'),
                        default=[(64, 3, 32, 32), (32, 3, 224, 224)],
                        help='NxCxHxW tensors for the op-alone count')
    parser.add_argument('--no-pin', action='store_true',
                        help='feed pageable images with a blocking copy (mmengine default)')
    parser.add_argument('--json', help='also write the counts as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def op_syncs(shapes, calls=5):
    from mmpretrain.models.utils.batch_augments import CutMix, Mixup
    from mmrm.models import RecursiveMixBatchAugment
    rows = []
    for shape in shapes:
        text = 'x'.join(map(str, shape))
        x = torch.randn(shape, device='cuda')
        y = F.one_hot(torch.randint(0, 100, (shape[0], ), device='cuda'), 100).float()
        rm = RecursiveMixBatchAugment(alpha=0.5)
        rm(x.clone(), y)  # a history first, as in training
        for name, op in (('RecursiveMix', rm), ('CutMix', CutMix(alpha=1.0)),
                         ('Mixup', Mixup(alpha=1.0))):
            sites = record_syncs(lambda: op(x.clone(), y), calls)
            rows.append(dict(shape=text, op=name, per_call=sum(sites.values()) / calls,
                             sites=dict(sites)))
    return rows


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print('cuda_sync_check.py needs a CUDA device (torch.cuda.is_available() is False): '
              'sync-debug mode exists only for CUDA streams', file=sys.stderr)
        return 2
    cfg = load_config(args.config, args.cfg_options)
    variants, _ = derive_variants(cfg, args.config)
    shape = args.shape or (input_channels_of(variants['rm']), 224, 224)
    print(f'torch {torch.__version__}, {torch.cuda.get_device_name()}')

    ops = op_syncs(args.op_shapes)
    print('\n## batch augment alone (syncs per call)\n')
    print('| input | op | syncs / call | sites |\n| --- | --- | --- | --- |')
    for r in ops:
        print(f"| {r['shape']} | {r['op']} | {r['per_call']:g} | "
              f"{', '.join(f'{s} x{n}' for s, n in r['sites'].items()) or '-'} |")

    optim_cfg = to_plain(cfg.get('optim_wrapper')) if cfg.get('optim_wrapper') else None
    models, wrappers = {}, {}
    for name, mcfg in variants.items():
        model = build_model(mcfg, 'cuda').train()
        # what a loader with pin_memory=True + non_blocking copies give; mmpretrain's
        # ClsDataPreprocessor does not expose the flag, mmengine's base class reads it here
        model.data_preprocessor._non_blocking = not args.no_pin
        models[name] = model
        wrappers[name] = build_optim_wrapper(model, optim_cfg, 'cuda')
    fresh = make_batch_factory(args.batch, shape, num_classes_of(variants['rm']),
                               pin_memory=not args.no_pin)
    steps = train_step_syncs(models, wrappers, fresh, args.steps, args.warmup)
    print(f"\n## training step, batch {args.batch} x {'x'.join(map(str, shape))}, "
          f"{'pinned, non-blocking' if not args.no_pin else 'pageable, blocking'} input "
          f'({args.steps} counted after {args.warmup} warm-up steps)\n')
    print('| variant | syncs / step | in mmrm | sites (count over the steps) |\n'
          '| --- | --- | --- | --- |')
    for name, r in steps.items():
        print(f"| {name} | {r['per_step']:g} | {r['in_mmrm']} | "
              f"{', '.join(f'{s} x{n}' for s, n in r['sites'].items()) or '-'} |")

    failures = []
    rm_op = [r for r in ops if r['op'] == 'RecursiveMix' and r['per_call']]
    if rm_op:
        failures.append(f'the RecursiveMix op synchronises: {rm_op}')
    if steps['rm']['in_mmrm']:
        failures.append('mmrm code synchronises in a training step: ' + ', '.join(
            s for s in steps['rm']['sites'] if is_mmrm_site(s)))
    if steps['rm']['per_step'] and not args.no_pin:
        # RMDataPreprocessor copies labels and inputs without blocking: nothing may wait
        failures.append(f"an RM step synchronises {steps['rm']['per_step']:g} times (0 "
                        f"expected; the baseline {steps['baseline']['per_step']:g})")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(torch=torch.__version__, device=torch.cuda.get_device_name(),
                           batch=args.batch, shape=list(shape), pinned=not args.no_pin,
                           ops=ops, steps=steps, failures=failures), f, indent=1)
    print()
    for msg in failures:
        print('FAIL:', msg)
    if not failures:
        print('OK: the RM op and the RM training step make no host-device synchronisation')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
