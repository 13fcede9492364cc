"""Score finished downstream runs before and after precise BN (a probe, on the val canvases).

Each RUN_DIR is a fine-tuning folder of ``tools/downstream.py``
(``work_dirs/downstream/<model>/<method>[_pre<p>]_seed<s>-<key>/``). The tool evaluates its last
checkpoint on ``--split`` as trained, recomputes every BatchNorm's statistics on the train
canvases with the weights fixed (:mod:`mmrm.experiments.precise_bn`), evaluates again, prints a
Markdown table of both and writes the rows to ``--out`` (JSON). No run record is changed.

    python tools/analysis_tools/precise_bn.py work_dirs/downstream/upernet/scratch_seed*-* \\
        --out results/probes/precise_bn_scratch_val.json
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import torch  # noqa: E402

from mmrm.experiments import write_json_atomic  # noqa: E402
from mmrm.experiments.precise_bn import precise_bn_scores  # noqa: E402
from mmrm.experiments.transfer import SPLITS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dirs', nargs='+', metavar='RUN_DIR',
                        help='finished fine-tuning folders of tools/downstream.py')
    parser.add_argument('--data-root', default='data/fashion_mnist_canvas',
                        help='the canvases the runs were made on')
    parser.add_argument('--split', choices=SPLITS, default='val',
                        help='the canvases scored (default val: a probe for choices)')
    parser.add_argument('--num-samples', type=int, default=None,
                        help='train canvases for the statistics (default: one pass)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    parser.add_argument('--out', default=None, help='JSON file for the rows')
    return parser.parse_args(argv)


def markdown(rows):
    lines = ['| run | metric | as trained | precise BN | change |',
             '| --- | --- | --- | --- | --- |']
    for r in rows:
        for column, before in r['before'].items():
            after = r['after'][column]
            lines.append(f'| {r["name"]} | {column} | {before:.2f} | {after:.2f} | '
                         f'{after - before:+.2f} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    missing = [d for d in args.run_dirs if not osp.isfile(osp.join(d, 'result.json'))]
    if missing:
        raise SystemExit(f'not a finished fine-tuning (no result.json): {", ".join(missing)}')
    rows = []
    for run_dir in args.run_dirs:
        rows.append(precise_bn_scores(run_dir, args.data_root, args.split, args.num_samples))
        print(f'[{len(rows)}/{len(args.run_dirs)}] {rows[-1]["name"]}: {rows[-1]["before"]} -> '
              f'{rows[-1]["after"]}', flush=True)
    print(markdown(rows))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        write_json_atomic(args.out, dict(split=args.split, data_root=args.data_root, rows=rows))
    return rows


if __name__ == '__main__':
    main()
