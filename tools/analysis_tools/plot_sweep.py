"""Top-1 error against alpha or omega over several runs (paper Figs. 4-5).

For each work dir (one training run, e.g. written by ``tools/sweep.py``), the swept value is
read from the config MMEngine dumped there (``model.train_cfg.augments.alpha`` for ``--param
alpha``, ``model.roi_head.omega`` for ``--param omega``, or any dotted ``--key``; the
component default when the config leaves it out) and the best validation top-1 from the
logged scalars (``<timestamp>/vis_data/scalars.json``). Runs with the same value (seeds) are
grouped: the tool prints mean and sample standard deviation of the best-epoch top-1 error per
value and plots them (line: mean, band: +- std), optionally with the baseline's mean error.

    python tools/analysis_tools/plot_sweep.py work_dirs/resnet18_2xb64_cifar100_rm/alpha-* \\
        --param alpha --out alpha.png [--baseline work_dirs/resnet18_2xb64_cifar100/*]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmrm.experiments.sweep import collect_sweep, format_sweep_table, summarise_sweep  # noqa: E402
from mmrm.experiments.work_dirs import best_metric  # noqa: E402
from mmrm.visualization.plots import plot_sweep  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', help='work dirs of the runs')
    parser.add_argument('--param', choices=['alpha', 'omega'], default='alpha')
    parser.add_argument('--key', help='dotted config key of the swept value (overrides '
                        '--param\'s default key)')
    parser.add_argument('--metric', default='accuracy/top1', help='logged accuracy (%%)')
    parser.add_argument('--baseline', nargs='+', default=None,
                        help='work dirs of baseline runs, drawn as a horizontal line')
    parser.add_argument('--out', default='sweep.png', help='PNG to write')
    parser.add_argument('--csv', help='also write the table as CSV')
    parser.add_argument('--title', default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    records = collect_sweep(args.work_dirs, args.param, args.key, args.metric)
    if not records:
        raise SystemExit('no run with a logged metric')
    summary = summarise_sweep(records)
    baseline = None
    if args.baseline:
        errs = [100. - v for v in (best_metric(wd, args.metric) for wd in args.baseline)
                if v is not None]
        if errs:
            baseline = summarise_sweep([dict(value=0., error=e) for e in errs])[0]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plotted = plot_sweep(summary, args.param, args.out, baseline=baseline, title=args.title)
    print(format_sweep_table(summary, args.param))
    if baseline is not None:
        print(f"baseline: {baseline['n']} runs, top-1 err {baseline['mean']:.2f} "
              f"+- {baseline['std']:.2f}")
    if args.csv:
        with open(args.csv, 'w') as f:
            f.write(f'{args.param},runs,mean_err,std_err\n')
            for s in summary:
                f.write(f"{s['value']:g},{s['n']},{s['mean']:.6f},{s['std']:.6f}\n")
    print(f'wrote {args.out}')
    return dict(records=records, summary=summary, plotted=plotted, baseline=baseline)


if __name__ == '__main__':
    main()
