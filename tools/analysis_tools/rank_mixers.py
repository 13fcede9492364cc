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
    python tools/analysis_tools/rank_mixers.py --report results/fashion_mnist  # the results

``--report DIR`` writes ``DIR/ranking.md`` (the results section of the ranking page, which
``docs/en/results/ranking.md`` carries verbatim) and the figure (``--figure``).
    python tools/analysis_tools/rank_mixers.py --report results/fashion_mnist  # the tables
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmrm.experiments.compare import REGIMES  # noqa: E402
from mmrm.experiments.compare_report import load_records  # noqa: E402
from mmrm.experiments.ranking import (SECOND_ARM_CANDIDATES, choose_second_regime,  # noqa: E402
                                      format_power, power_estimate)
from mmrm.experiments import read_json  # noqa: E402
from mmrm.experiments.history_probe import run_probe  # noqa: E402
from mmrm.experiments.ranking_report import format_report, plot_report  # noqa: E402

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
    parser.add_argument('--report', metavar='DIR', help='the results of every arm from the '
                        'records in DIR/<regime>: DIR/ranking.md and the figure')
    parser.add_argument('--probe', metavar='OUT', help='P2: probe the RM models of arms 1 '
                        'and 3 (seeds 0-4; trained here where the run cache lacks them) and '
                        'write OUT (e.g. results/probes/history_boxes.json)')
    parser.add_argument('--work-root', default=osp.join(ROOT, 'work_dirs/fashion_mnist_compare'),
                        help='--probe: the comparison\'s run cache')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--probe-results',
                        default=osp.join(ROOT, 'results/probes/history_boxes.json'),
                        help='--report: P2\'s committed probe (left out when missing)')
    parser.add_argument('--figure', default=osp.join(ROOT, 'docs/images/ranking_contrasts.png'))
    args = parser.parse_args(argv)
    if not (args.power or args.choose or args.report or args.probe):
        parser.error('give --power DIR, --choose DIR, --report DIR or --probe OUT')
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    if args.probe:
        run_probe(osp.abspath(args.work_root), osp.abspath(args.data_root), args.probe)
        return 0
    if args.report:
        records = {r: load_records(osp.join(args.report, r)) for r in REGIMES}
        probe = read_json(args.probe_results) if osp.isfile(args.probe_results) else None
        text = format_report(records, probe)
        with open(osp.join(args.report, 'ranking.md'), 'w') as f:
            f.write(text)
        plot_report(records, args.figure)
        print(text)
        print(f'[ranking] {osp.join(args.report, "ranking.md")}; figure: {args.figure}')
        return 0
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
