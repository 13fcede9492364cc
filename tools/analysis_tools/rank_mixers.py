"""The ranking study (``docs/en/results/ranking.md``): RM against the other mixers with enough
seeds to decide, in three arms, Holm-corrected.

The runs are those of ``compare_fashion_mnist.py`` (the same run cache and published records),
so the training is::

    # arm 1: scarce-20, the seven methods x seeds 0-18 (seeds 0-2 are Tables 1 / 6's records)
    python tools/analysis_tools/compare_fashion_mnist.py --regime scarce-20 \\
        --methods baseline mixup cutmix manifold-mixup feature-cutmix rm rm-no-rs \\
        --seeds $(seq 0 18) --export results/fashion_mnist

and this tool reads the records::

    python tools/analysis_tools/rank_mixers.py --power results/fashion_mnist   # the sizing
    python tools/analysis_tools/rank_mixers.py --choose results/fashion_mnist  # arm 2's regime
    python tools/analysis_tools/rank_mixers.py --report results/fashion_mnist  # the tables
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmrm.experiments.compare import load_records  # noqa: E402
from mmrm.experiments.ranking import (SECOND_ARM_CANDIDATES, choose_second_regime,  # noqa: E402
                                      format_power, power_estimate)

#: ``--choose``'s exit status while a candidate's selection runs are missing
SELECTION_MISSING = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--power', metavar='DIR', help='the seeds the study needs, from the '
                        'pilot records in DIR/scarce-20 (seeds 0-2)')
    parser.add_argument('--choose', metavar='DIR', help='the not-tiny arm\'s regime by the '
                        'preregistered rule, from the selection records in DIR/<candidate>: '
                        'prints it (exit 0), or prints the candidate whose selection runs are '
                        f'missing (exit {SELECTION_MISSING})')
    args = parser.parse_args(argv)
    if not (args.power or args.choose):
        parser.error('give --power DIR or --choose DIR')
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    if args.choose:
        chosen, missing = choose_second_regime(
            {r: load_records(osp.join(args.choose, r)) for r in SECOND_ARM_CANDIDATES})
        print(chosen or missing)
        return 0 if chosen else SELECTION_MISSING
    folder = osp.join(args.power, 'scarce-20')
    records = load_records(folder)
    if not records:
        parser.error(f'--power: no records in {folder}')
    print(format_power(power_estimate(records)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
