"""The downstream chain in one command (`make downstream`): pretrain the Fashion-MNIST network
with each method, convert its backbone, fine-tune ATSS, GFL, Mask R-CNN, HTC, PSPNet and UperNet
on Fashion-MNIST canvases and score them with mmdet's CocoMetric / mmseg's IoUMetric, then print
the transfer table (paper Tables 7-9, offline) and write every metric to JSON.

    python tools/downstream.py                              # scratch, baseline, cutmix, rm; seed 0
    python tools/downstream.py --methods baseline rm --models atss pspnet --seeds 0 1
    python tools/downstream.py --pretrained rm=work_dirs/demo/epoch_4.pth

Finished pretrainings and fine-tunings are found in --work-dir and skipped, so an interrupted
chain resumes where it stopped (a fine-tuning from its last checkpoint). See
mmrm/analysis/transfer.py.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmrm.analysis.transfer import DOWNSTREAM_MODELS, TransferChain, pretrain_configs  # noqa
from mmrm.datasets import (CanvasOptions, FashionMNISTMissing, canvas_dataset_ready,  # noqa
                           write_canvas_dataset)

DEFAULT_METHODS = ['scratch', 'baseline', 'cutmix', 'rm']


def parse_args(argv=None):
    methods = list(pretrain_configs(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', default=DEFAULT_METHODS, metavar='METHOD',
                        help=f'pretraining methods (default: {" ".join(DEFAULT_METHODS)}; '
                        f'allowed: {", ".join(methods)})')
    parser.add_argument('--models', nargs='+', default=list(DOWNSTREAM_MODELS), metavar='MODEL',
                        help=f'downstream models (default and allowed: '
                        f'{", ".join(DOWNSTREAM_MODELS)})')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0],
                        help='fine-tuning seeds (default: 0)')
    parser.add_argument('--pretrain-seed', type=int, default=0,
                        help='seed of the pretraining runs (default: 0)')
    parser.add_argument('--pretrained', nargs='+', default=[], metavar='METHOD=CKPT',
                        help='reuse a finished Fashion-MNIST pretraining, e.g. '
                        'rm=work_dirs/demo/epoch_4.pth')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/downstream'))
    parser.add_argument('--fashion-mnist', default=osp.join(ROOT, 'data/fashion_mnist'),
                        help='Fashion-MNIST IDX files (`make data`)')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist_canvas'),
                        help='canvas dataset; composed with the default options if missing')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads per run (default: cores / jobs)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='fine-tunings at once (default 2; a pretraining runs alone with '
                        'jobs x threads threads)')
    parser.add_argument('--pretrain-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for the pretraining runs')
    parser.add_argument('--finetune-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for every fine-tuning and test run')
    parser.add_argument('--det-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for the detectors only (e.g. train_cfg.max_epochs=6)')
    parser.add_argument('--seg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for the segmentors only (e.g. '
                        'train_cfg.max_iters=500)')
    parser.add_argument('--report', action='store_true',
                        help='run nothing: tabulate the finished runs found in --work-dir')
    args = parser.parse_args(argv)
    for name, given, allowed in (('--methods', args.methods, methods),
                                 ('--models', args.models, list(DOWNSTREAM_MODELS))):
        bad = [x for x in given if x not in allowed]
        if bad:
            parser.error(f'{name}: unknown {", ".join(bad)}; allowed: {", ".join(allowed)}')
    pretrained = {}
    for item in args.pretrained:
        method, sep, path = item.partition('=')
        if not sep or method not in methods or method == 'scratch':
            parser.error(f'--pretrained {item!r}: expected METHOD=CHECKPOINT with METHOD one of '
                         f'{", ".join(m for m in methods if m != "scratch")}')
        if not osp.isfile(path):
            parser.error(f'--pretrained {item!r}: no such checkpoint {path}')
        pretrained[method] = path
    args.pretrained = pretrained
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:  # a dataset already there (made with any options) is used as it is
        if not args.report and not canvas_dataset_ready(args.data_root):
            write_canvas_dataset(args.fashion_mnist, args.data_root, CanvasOptions())
    except FashionMNISTMissing as exc:
        sys.exit(f'downstream: {exc}')
    chain = TransferChain(args.work_dir, args.methods, args.models, args.seeds,
                          data_root=args.data_root, fashion_mnist=args.fashion_mnist,
                          pretrained=args.pretrained, pretrain_seed=args.pretrain_seed,
                          threads=args.threads, jobs=args.jobs,
                          pretrain_options=args.pretrain_options,
                          finetune_options=dict(det=args.finetune_options + args.det_options,
                                                seg=args.finetune_options + args.seg_options))
    try:
        chain.report() if args.report else chain.run()
    except (RuntimeError, FileNotFoundError) as exc:  # FashionMNISTMissing included
        sys.exit(f'downstream: {exc}')


if __name__ == '__main__':
    main()
