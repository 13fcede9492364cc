"""Run one config over a list of values of one ``--cfg-options`` key and a list of seeds.

Each (value, seed) trains into its own work dir,
``work_dirs/<config name>/<key leaf>-<value>_seed-<seed>``, through ``tools/dist_train.sh``
(``--gpus`` > 1) or ``tools/train.py`` (``--gpus 1``), one run after the other. A run that
finished (``.sweep-done`` in its work dir) is skipped, so an interrupted sweep restarts where it
stopped. ``--summary`` reads the logged validation accuracies and prints, per value, the mean
and standard deviation over seeds of the best-epoch top-1 error (the paper's Fig. 4 / 5 metric).

Examples (the paper's Fig. 4 alpha curve on CIFAR-100 ResNet-18, 3 seeds)::

    python tools/sweep.py configs/rm/resnet18_2xb64_cifar100_rm.py --gpus 2 \\
        --key model.train_cfg.augments.alpha --values 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 \\
        --seeds 0 1 2
    python tools/sweep.py configs/rm/resnet18_2xb64_cifar100_rm.py \\
        --key model.train_cfg.augments.alpha --values 0.1 0.2 0.3 --seeds 0 1 2 --summary

Any argument this script does not know is passed on to ``tools/train.py`` (e.g. ``--amp``).
"""
import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(TOOLS))
from mmrm.analysis.work_dirs import best_metric  # noqa: E402

DONE = '.sweep-done'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--key', required=True,
                        help='dotted --cfg-options key, e.g. model.roi_head.omega')
    parser.add_argument('--values', nargs='+', required=True, help='values of the key')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0], help='randomness.seed')
    parser.add_argument('--gpus', type=int, default=1, help='processes per run')
    parser.add_argument('--work-root', default='work_dirs',
                        help='parent of work_dirs/<config name>/...')
    parser.add_argument('--metric', default='accuracy/top1', help='validation metric (%%)')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    parser.add_argument('--summary', action='store_true',
                        help='print best-epoch error per value instead of training')
    return parser.parse_known_args(argv)


def work_dir(args, value, seed):
    name = osp.splitext(osp.basename(args.config))[0]
    leaf = args.key.split('.')[-1]
    return osp.join(args.work_root, name, f'{leaf}-{value}_seed-{seed}')


def command(args, value, seed, extra):
    wd = work_dir(args, value, seed)
    if args.gpus > 1:
        cmd = ['bash', osp.join(TOOLS, 'dist_train.sh'), args.config, str(args.gpus)]
    else:
        cmd = [sys.executable, osp.join(TOOLS, 'train.py'), args.config]
    return cmd + ['--work-dir', wd, *extra, '--cfg-options', f'{args.key}={value}',
                  f'randomness.seed={seed}']


def summary(args):
    print(f'{args.key:>40} | runs | best top-1 err mean | std')
    for value in args.values:
        errs = []
        for seed in args.seeds:
            acc = best_metric(work_dir(args, value, seed), args.metric)
            if acc is not None:
                errs.append(100.0 - acc)
        mean = f'{statistics.mean(errs):.2f}' if errs else '-'
        std = f'{statistics.stdev(errs):.2f}' if len(errs) > 1 else '-'
        print(f'{value:>40} | {len(errs):>4} | {mean:>18} | {std}')


def main(argv=None):
    args, extra = parse_args(argv)
    if args.summary:
        summary(args)
        return 0
    failed = []
    for value in args.values:
        for seed in args.seeds:
            wd = work_dir(args, value, seed)
            cmd = command(args, value, seed, extra)
            if args.dry_run:
                print(' '.join(cmd))
                continue
            if osp.isfile(osp.join(wd, DONE)):
                print(f'[sweep] {wd}: done, skipped', flush=True)
                continue
            print(f'[sweep] {" ".join(cmd)}', flush=True)
            if subprocess.call(cmd) == 0:
                os.makedirs(wd, exist_ok=True)
                open(osp.join(wd, DONE), 'w').close()
            else:
                failed.append(wd)
    if failed:
        print('[sweep] failed: ' + ', '.join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
