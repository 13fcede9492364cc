"""Run one config over a list of values of one ``--cfg-options`` key and a list of seeds.

Each (value, seed) is a run of the run cache (``mmrm/experiments/``) keyed by the resolved
config, the key's value and the other arguments, the checkpoint it loads (``load_from``) and the
seed; it trains into its own work dir, ``work_dirs/<config name>/<key leaf>-<value>_seed-<seed>-
<8 hex digits of the key>``, through ``tools/dist_train.sh`` (``--gpus`` > 1) or
``tools/train.py`` (``--gpus 1``). A finished run of the same key is skipped, so an interrupted
sweep restarts where it stopped, while a changed config or option runs again into new folders.
Runs go to local processes (``--jobs`` at a time) or, with ``--launcher slurm``, to sbatch jobs
(submitit). ``--summary`` reads the logged validation accuracies and prints, per value, the mean
and standard deviation over seeds of the best-epoch top-1 error (the paper's Fig. 4 / 5 metric).

Examples (the paper's Fig. 4 alpha curve on CIFAR-100 ResNet-18, 3 seeds)::

    python tools/sweep.py configs/rm/resnet18_2xb64_cifar100_rm.py --gpus 2 \\
        --key model.train_cfg.augments.alpha --values 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 \\
        --seeds 0 1 2
    python tools/sweep.py configs/rm/resnet18_2xb64_cifar100_rm.py --gpus 2 \\
        --key model.train_cfg.augments.alpha --values 0.1 0.5 0.9 --seeds 0 1 2 \\
        --launcher slurm --partition gpu --gpus-per-run 2 --jobs 9
    python tools/sweep.py configs/rm/resnet18_2xb64_cifar100_rm.py \\
        --key model.train_cfg.augments.alpha --values 0.1 0.2 0.3 --seeds 0 1 2 --summary

Any argument this script does not know is passed on to ``tools/train.py`` (e.g. ``--amp``).
"""
import argparse
import functools
import os.path as osp
import sys

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(TOOLS))
from mmrm.experiments import (Run, RunKey, add_launcher_args, config_digest,  # noqa: E402
                              launcher_from_args, mean_std)
from mmrm.experiments.keys import config_inputs  # noqa: E402
from mmrm.experiments.work_dirs import best_metric  # noqa: E402


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
    add_launcher_args(parser)
    args, extra = parser.parse_known_args(argv)
    return parser, args, extra


def _train_body(ctx, cmd, metric):
    """One sweep run: train into the run's folder; its best logged ``metric``."""
    ctx.call(cmd)
    return dict(best=best_metric(ctx.folder, metric))


def cfg_options_of(extra):
    """The ``--cfg-options`` items among the arguments passed on to ``tools/train.py``."""
    out, inside = [], False
    for item in extra:
        if item.startswith('--'):
            inside = item == '--cfg-options'
        elif inside:
            out.append(item)
    return out


def sweep_runs(args, extra):
    """``[(value, run, command)]``: the keyed run of every (value, seed), values first. The key
    holds the resolved config, the options (in canonical order), every checkpoint the run
    loads (``load_from`` or an ``init_cfg`` checkpoint, in the config or in ``--cfg-options``:
    its sha256) and the files of its datasets' ``data_root`` (their sha256)."""
    digest = config_digest(args.config)
    root = osp.join(args.work_root, osp.splitext(osp.basename(args.config))[0])
    leaf = args.key.split('.')[-1]
    if args.gpus > 1:
        train = ['bash', osp.join(TOOLS, 'dist_train.sh'), args.config, str(args.gpus)]
    else:
        train = [sys.executable, osp.join(TOOLS, 'train.py'), args.config]
    out = []
    for value in args.values:
        for seed in args.seeds:
            # processes per run change the total batch: part of the key, as train.py's args
            inputs = config_inputs(args.config, [*cfg_options_of(extra), f'{args.key}={value}'])
            key = RunKey(digest, [f'--gpus={args.gpus}', *extra, f'{args.key}={value}'],
                         data=inputs['data'], checkpoints=inputs['checkpoints'], seed=seed)
            stem = f'{leaf}-{value}_seed-{seed}'
            cmd = train + ['--work-dir', osp.join(root, f'{stem}-{key.short}'), *extra,
                           '--cfg-options', f'{args.key}={value}', f'randomness.seed={seed}']
            run = Run(f'{leaf} {value} seed {seed}', root, stem, key,
                      functools.partial(_train_body, cmd=cmd, metric=args.metric),
                      threads=args.threads, group=str(value))
            out.append((value, run, cmd))
    return out


def summary(args, runs):
    print(f'{args.key:>40} | runs | best top-1 err mean | std')
    for value in args.values:
        accs = [best_metric(run.folder, args.metric) for v, run, _ in runs if v == value]
        errs = [100.0 - acc for acc in accs if acc is not None]
        mean, std = mean_std(errs) if errs else (0., 0.)
        print(f'{value:>40} | {len(errs):>4} | {f"{mean:.2f}" if errs else "-":>18} | '
              f'{f"{std:.2f}" if len(errs) > 1 else "-"}')


def main(argv=None):
    parser, args, extra = parse_args(argv)
    launcher = launcher_from_args(parser, args, osp.join(args.work_root, '.submitit'))
    runs = sweep_runs(args, extra)
    if args.summary:
        summary(args, runs)
        return 0
    if args.dry_run:
        for _, _, cmd in runs:
            print(' '.join(cmd))
        return 0
    try:
        launcher.run([run for _, run, _ in runs],
                     describe=lambda r: f'best {args.metric} {r["result"]["best"]}')
    except RuntimeError as exc:
        print(f'[sweep] {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
