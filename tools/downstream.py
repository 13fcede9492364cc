"""The downstream chain in one command (`make downstream`): pretrain the Fashion-MNIST network
with each method, convert its backbone, fine-tune ATSS, GFL, Mask R-CNN, HTC, PSPNet and UperNet
on Fashion-MNIST canvases and score them with mmdet's CocoMetric / mmseg's IoUMetric, then print
the transfer table (paper Tables 7-9, offline) and write every metric to JSON. The table holds
test-canvas scores only (mean +- std over the runs, paired differences RM - CutMix and
RM - baseline with 95 % intervals); the val-canvas scores are kept in the records for choices.

    python tools/downstream.py                              # scratch, baseline, cutmix, rm; seed 0
    python tools/downstream.py --methods baseline rm --models atss pspnet --seeds 0 1 2 \
        --pretrain-seeds 0 1
    python tools/downstream.py --methods scratch-long --models atss gfl pspnet upernet
    python tools/downstream.py --seeds 0 1 2 3 --pretrain-seeds 0 1 --pairing cycle
    python tools/downstream.py --methods rm --models upernet --seeds 0 1 2 --split val \
        --seg-options optim_wrapper.optimizer.lr=3e-4    # a choice, made on the val canvases
    python tools/downstream.py --pretrained rm=work_dirs/demo/epoch_4.pth
    python tools/downstream.py --export results/transfer    # the records behind the table
    python tools/downstream.py --report results/transfer    # the table from those records alone

Each pretraining and fine-tuning is a run keyed by its resolved config, options, data, seed and
the sha256 of the checkpoints it loads (mmrm/experiments/keys.py): a finished run of the same key
is found in --work-dir and skipped, one of another key never reused, so an interrupted chain
resumes where it stopped (a fine-tuning from its last checkpoint). Runs go to local processes
(default) or, with --launcher slurm, to sbatch jobs (submitit). See mmrm/experiments/transfer/.

    python tools/downstream.py --launcher slurm --partition gpu --jobs 12 --threads 4
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmrm.experiments import add_launcher_args, slurm_parameters  # noqa: E402
from mmrm.experiments.transfer import (DOWNSTREAM_MODELS, PAIRINGS, SPLITS,  # noqa: E402
                                       TransferChain, check_choices, pretrain_configs)
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
    parser.add_argument('--pretrain-seeds', '--pretrain-seed', nargs='+', type=int, default=[0],
                        help='seeds of the pretraining runs (default: 0); --pairing says '
                        'which fine-tuning seeds run from which')
    parser.add_argument('--pairing', choices=PAIRINGS, default='cross',
                        help='which fine-tuning seeds run from which pretraining seed: cross '
                        '(each from each, the default) or cycle (the i-th fine-tuning seed '
                        'from the (i mod P)-th of the P pretraining seeds)')
    parser.add_argument('--split', choices=SPLITS, default='test',
                        help='the canvases whose scores are shown: test (the reported table, '
                        'default) or val (for choices of lr / schedule: the val table, no '
                        'test score shown)')
    parser.add_argument('--pretrained', nargs='+', default=[], metavar='METHOD=CKPT',
                        help='reuse a finished Fashion-MNIST pretraining, e.g. '
                        'rm=work_dirs/demo/epoch_4.pth')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/downstream'))
    parser.add_argument('--fashion-mnist', default=osp.join(ROOT, 'data/fashion_mnist'),
                        help='Fashion-MNIST IDX files (`make data`)')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist_canvas'),
                        help='canvas dataset; composed with the default options if missing')
    parser.add_argument('--pretrain-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for the pretraining runs')
    parser.add_argument('--finetune-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for every fine-tuning and test run')
    parser.add_argument('--det-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for the detectors only (e.g. train_cfg.max_epochs=6)')
    parser.add_argument('--seg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='--cfg-options for the segmentors only (e.g. '
                        'train_cfg.max_iters=500)')
    parser.add_argument('--report', nargs='?', const=True, default=None, metavar='DIR',
                        help='run nothing: tabulate the finished runs of these methods / '
                        'models / seeds found in --work-dir; with DIR, the table from the run '
                        'records in DIR alone (what --export wrote), to DIR/results.md')
    parser.add_argument('--export', metavar='DIR',
                        help='run nothing: copy the records of the finished runs of these '
                        'methods / models / seeds (JSON with their keys) to DIR (e.g. '
                        'results/transfer) and write the table made from them')
    add_launcher_args(parser, jobs=2)
    args = parser.parse_args(argv)
    pretrained = {}
    for item in args.pretrained:
        method, sep, path = item.partition('=')
        if not sep:
            parser.error(f'--pretrained {item!r}: expected METHOD=CHECKPOINT')
        pretrained[method] = path
    args.pretrained = pretrained
    if args.export and args.report:
        parser.error('--export and --report: one at a time')
    if args.split == 'val' and (args.export or isinstance(args.report, str)):
        parser.error('--split val: the published records (--export / --report DIR) make the '
                     'test table only')
    try:
        check_choices(args.methods, args.models, pretrained)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    args.slurm = slurm_parameters(parser, args)
    return args


def main(argv=None):
    from mmrm.utils.stack import StackMissing
    args = parse_args(argv)
    if isinstance(args.report, str):  # the published records alone: no chain, no data
        from mmrm.experiments.transfer import report_records
        try:
            report_records(args.report)
        except (RuntimeError, OSError) as exc:
            sys.exit(f'downstream: {exc}')
        return
    tabulate = args.report or args.export
    try:  # a dataset already there (made with any options) is used as it is
        if not tabulate and not canvas_dataset_ready(args.data_root):
            write_canvas_dataset(args.fashion_mnist, args.data_root, CanvasOptions())
    except FashionMNISTMissing as exc:
        sys.exit(f'downstream: {exc}')
    chain = TransferChain(args.work_dir, args.methods, args.models, args.seeds,
                          data_root=args.data_root, fashion_mnist=args.fashion_mnist,
                          pretrained=args.pretrained, pretrain_seeds=args.pretrain_seeds,
                          pairing=args.pairing, split=args.split,
                          threads=args.threads, jobs=args.jobs,
                          pretrain_options=args.pretrain_options,
                          finetune_options=dict(det=args.finetune_options + args.det_options,
                                                seg=args.finetune_options + args.seg_options),
                          launcher=args.launcher, slurm=args.slurm)
    try:
        if args.export:
            chain.export(args.export)
        elif args.report:
            chain.report()
        else:
            chain.run()
    except (RuntimeError, FileNotFoundError, StackMissing) as exc:  # FashionMNISTMissing too
        sys.exit(f'downstream: {exc}')


if __name__ == '__main__':
    main()
