"""Effective class number of the training targets (paper Fig. 8).

For ``--iters`` batches of the config's training loader, the same batches go through the data
preprocessor of each method (baseline: one-hot labels; Mixup; CutMix; RecursiveMix, each with
its own state, e.g. the RM history), and the tool counts, per sample, the classes whose target
weight is above each threshold. It prints the mean over samples and iterations as a markdown
table and writes a plot and CSV / markdown tables into ``--out-dir``.

The methods and their settings are derived from the config as in ``rm_cost_report.py``: RM is
the config's own augment; Mixup / CutMix come from the sibling ``*_mixup.py`` /
``*_cutmix.py`` configs when they exist, else alpha 1.

    python tools/analysis_tools/effective_classes.py \\
        configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py --iters 100 --out-dir out/
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

from mmrm.analysis.effective_classes import (DEFAULT_THRESHOLDS,  # noqa: E402
                                             effective_classes, format_effective_table,
                                             variant_preprocessors)
from mmrm.analysis.variants import VARIANTS, build_train_loader  # noqa: E402
from mmrm.utils import load_config  # noqa: E402
from mmrm.visualization.plots import plot_effective_classes  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='an RM config (e.g. configs/rm/*_rm.py)')
    parser.add_argument('--iters', type=int, default=100, help='loader batches')
    parser.add_argument('--thresholds', type=float, nargs='+', default=list(DEFAULT_THRESHOLDS))
    parser.add_argument('--methods', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--out-dir', default='.', help='where the PNG / CSV / MD go')
    parser.add_argument('--name', default='effective_classes', help='output file stem')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=None,
                        help='override the loader batch size')
    parser.add_argument('--num-workers', type=int, default=0, help='loader workers')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, as tools/train.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    thresholds = sorted(args.thresholds)
    cfg = load_config(args.config, args.cfg_options)
    pres = variant_preprocessors(cfg, args.config, args.methods)
    loader = build_train_loader(cfg, args.seed, args.batch_size, args.num_workers)
    result = effective_classes(pres, loader, args.iters, thresholds, seed=args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, args.name)
    table = format_effective_table(result, thresholds)
    with open(stem + '.md', 'w') as f:
        f.write(table + '\n')
    with open(stem + '.csv', 'w') as f:
        f.write(format_effective_table(result, thresholds, markdown=False) + '\n')
    plotted = plot_effective_classes(
        result, thresholds, stem + '.png',
        title=f'{osp.basename(args.config)}: {args.iters} iterations')
    print(f'mean number of classes with a target above the threshold '
          f'({args.iters} iterations):')
    print(table)
    print(f'wrote {stem}.png, {stem}.csv, {stem}.md')
    return dict(result=result, thresholds=thresholds, plotted=plotted, stem=stem)


if __name__ == '__main__':
    main()
