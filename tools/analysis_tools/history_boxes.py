"""What a trained RM network sees of the history (the ranking study's P2): its test accuracy
on the images shrunk into a centred box alone, by relative box side
(:mod:`mmrm.analysis.history_boxes`). The study's own probe (its models, trained where this
machine lacks them) is ``rank_mixers.py --probe``.

    python tools/analysis_tools/history_boxes.py WORK_DIR... --out probe.json \\
        [--cfg-options test_dataloader.dataset.data_root=data/fashion_mnist]

Each WORK_DIR is a finished training (its dumped config and its last ``epoch_*.pth``, e.g.
the ``train/`` folder of a comparison run); the model is the last epoch's, scored on the
config's test split (its own image size: 28 px, or 56 px in the upsampled regime).
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
import mmrm  # noqa: E402,F401  (registers the components)
from mmrm.analysis.history_boxes import RELATIVE_SIDES, probe_work_dir  # noqa: E402
from mmrm.experiments import write_json_atomic  # noqa: E402


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--out', required=True, help='JSON file of one row per work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    rows = []
    for wd in args.work_dirs:
        row = dict(work_dir=osp.abspath(wd), **probe_work_dir(wd, args.cfg_options))
        rows.append(row)
        acc = ', '.join(f'{k} {v:.1f}' for k, v in row['accuracy'].items())
        print(f'[history boxes] {wd} ({row["image_size"]} px, seed {row["seed"]}): {acc}')
    write_json_atomic(args.out, dict(relative_sides=list(RELATIVE_SIDES), rows=rows))
    print(f'[history boxes] {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
