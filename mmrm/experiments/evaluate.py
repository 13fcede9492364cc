"""Score a finished training on its test split: the last checkpoint and the best-on-val one,
with one Runner (one start-up), plus the validation curve the training logged.

    python -m mmrm.experiments.evaluate WORK_DIR --out evaluation.json [--cfg-options ...]

writes ``{"test_last", "test_best", "best_epoch", "last_epoch", "val_best", "val_last",
"val_curve": [[epoch, metric], ...], "metric"}`` (metrics in %, as logged). The best-on-val
checkpoint is the ``best_*.pth`` MMEngine's CheckpointHook kept (``save_best``); the best
epoch is read from the validation log, the first epoch of the highest value (what
``save_best`` keeps). When that is the last epoch, the test split is scored once.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Tuple

from .work_dirs import best_checkpoint, work_dir_config

__all__ = ['val_curve', 'evaluate_work_dir']


def val_curve(work_dir: str, metric: str = 'accuracy/top1') -> List[Tuple[int, float]]:
    """``[(epoch, value)]`` of ``metric`` in the newest run's ``vis_data/scalars.json``."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not paths:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    curve = []
    with open(paths[-1]) as f:
        for line in f:
            record = json.loads(line)
            if metric in record:
                curve.append((int(record['step']), float(record[metric])))
    if not curve:
        raise ValueError(f'{paths[-1]} logs no {metric}')
    return curve


def evaluate_work_dir(work_dir: str, cfg_options=None, metric: str = 'accuracy/top1') -> Dict:
    from mmengine.config import Config
    from mmengine.runner import Runner
    curve = val_curve(work_dir, metric)
    best_epoch, val_best = max(curve, key=lambda p: (p[1], -p[0]))
    last = osp.join(work_dir, f'epoch_{curve[-1][0]}.pth')
    if not osp.isfile(last):
        raise FileNotFoundError(f'{last}: the last epoch\'s checkpoint is missing')
    best = best_checkpoint(work_dir)
    cfg = Config.fromfile(work_dir_config(work_dir))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = osp.join(work_dir, 'test')
    cfg.load_from = None
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(last)
    scores = dict(test_last=float(runner.test()[metric]))
    if best_epoch == curve[-1][0]:  # the same weights: no second pass
        scores['test_best'] = scores['test_last']
    else:
        runner.load_checkpoint(best)
        scores['test_best'] = float(runner.test()[metric])
    return dict(metric=metric, **scores, best_epoch=best_epoch, last_epoch=curve[-1][0],
                val_best=val_best, val_last=curve[-1][1], val_curve=curve,
                best_checkpoint=osp.basename(best))


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('--out', required=True, help='JSON file written')
    parser.add_argument('--metric', default='accuracy/top1')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    result = evaluate_work_dir(args.work_dir, args.cfg_options, args.metric)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != 'val_curve'}))


if __name__ == '__main__':
    main()
