"""The offline Tables 1 / 6: every regularizer that applies to the Fashion-MNIST demo network,
trained in one data-scarce regime, several seeds each, scored on the test split.

Each (method, seed) is a keyed run of the run cache (``mmrm/experiments/``, shared with
``tools/sweep.py`` and ``tools/downstream.py``) in ``<work-root>/<regime>/<method>_seed<k>-<key>``:
``tools/train.py`` with the regime's options (subset, batch, epochs, ``val`` every few epochs,
best-on-val checkpoint), then the last and best-on-val checkpoints scored on ``test``. A finished
run of the same key is skipped, so a stopped comparison resumes; progress lines carry an ETA.

    # the table: all methods x 3 seeds, one single-threaded run per core
    python tools/analysis_tools/compare_fashion_mnist.py --seeds 0 1 2 \\
        --export results/fashion_mnist
    # choosing the regime on val: baseline and CutMix in each candidate
    python tools/analysis_tools/compare_fashion_mnist.py --regime scarce-50 \\
        --methods baseline cutmix --export results/fashion_mnist
    # docs/en/results/tables.md's table and figure again from the committed records
    python tools/analysis_tools/compare_fashion_mnist.py --report results/fashion_mnist

``--export DIR`` copies every record to ``DIR/<regime>/<method>_seed<k>.json`` as its run
finishes, writes ``DIR/<regime>/table.md`` and the figure at the end, and takes a record
already there that was made with a run's key as that run, finished (a new machine reuses the
published runs); ``--report DIR`` does the same from those files only.
``--selection`` prints, per regime, baseline and CutMix on ``val`` (the choice of regime).
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmrm.experiments.compare import (DEFAULT_REGIME, METHOD_NAMES, REGIMES,  # noqa: E402
                                      comparison_runs)
from mmrm.experiments.compare_report import (export_records, format_selection,  # noqa: E402
                                             format_table, load_records, summarise)
from mmrm.experiments import add_launcher_args, launcher_from_args  # noqa: E402
from mmrm.utils.machine import cores_available  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--regime', default=DEFAULT_REGIME, choices=list(REGIMES))
    parser.add_argument('--methods', nargs='+', default=METHOD_NAMES, choices=METHOD_NAMES)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--work-root', default=osp.join(ROOT, 'work_dirs/fashion_mnist_compare'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--export', metavar='DIR', help='copy the records, table and figure '
                        'to DIR/<regime>/ (e.g. results/fashion_mnist)')
    parser.add_argument('--report', metavar='DIR', help='no training: the table and figure '
                        'from the records in DIR/<regime>/')
    parser.add_argument('--selection', metavar='DIR', help='no training: baseline and CutMix '
                        'on val in every regime with records in DIR/')
    parser.add_argument('--table-seeds', nargs='+', type=int, default=None,
                        help='the seeds table.md and the figure summarise (default: --seeds); '
                        'Tables 1 / 6 are seeds 0 1 2, whatever further seeds the ranking '
                        'study adds to the same folder')
    parser.add_argument('--figure', default=osp.join(ROOT, 'docs/images/fashion_mnist_comparison.png'))
    # one single-threaded run per core: on 2 cores two runs of one thread each train the table
    # ~1.2x faster than one run of two threads (docs/en/results/tables.md); no loader workers
    add_launcher_args(parser, jobs=cores_available())
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = 1
    return parser, args


def write_report(records, folder, figure, seeds):
    """The table and figure of the records of ``seeds`` (Tables 1 / 6 are seeds 0-2; the
    ranking study's further seeds are its own page's, ``tools/analysis_tools/rank_mixers.py``)."""
    from mmrm.visualization.plots import plot_comparison
    records = [r for r in records if r['result']['seed'] in seeds]
    rows = summarise(records)
    table = format_table(rows)
    with open(osp.join(folder, 'table.md'), 'w') as f:
        f.write(table + '\n')
    plot_comparison(rows, figure)
    print(table)
    print(f'[compare] table: {osp.join(folder, "table.md")}; figure: {figure}')
    return rows


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)  # progress lines as they come, also into a file
    parser, args = parse_args(argv)
    if args.selection:
        print(format_selection({r: load_records(osp.join(args.selection, r)) for r in REGIMES}))
        return 0
    if args.report:
        folder = osp.join(args.report, args.regime)
        records = load_records(folder)
        if not records:
            parser.error(f'--report: no records in {folder}')
        write_report(records, folder, args.figure, args.table_seeds or args.seeds)
        return 0
    launcher = launcher_from_args(parser, args, osp.join(args.work_root, '.submitit'))
    runs = comparison_runs(args.work_root, args.regime, args.methods, args.seeds,
                           osp.abspath(args.data_root), threads=args.threads,
                           published=args.export)
    folder = osp.join(args.export, args.regime) if args.export else None

    def publish(run, record):  # at once: a session that stops loses no finished run
        if folder:
            export_records([record], folder)

    def describe(record):  # val only: the test split is read in the table, not while choosing
        r = record['result']
        return f'val err {100 - r["val_last"]:.2f} (last), best epoch {r["best_epoch"]}'

    try:
        records = launcher.run(runs, describe=describe, label=f'{args.regime} ',
                               on_record=publish)
    except RuntimeError as exc:
        print(f'[compare] {exc}', file=sys.stderr)
        return 1
    if folder:
        export_records(records, folder)
        write_report(load_records(folder), folder, args.figure, args.table_seeds or args.seeds)
    else:
        print(format_table(summarise(records)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
