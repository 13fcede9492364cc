"""What a finished MMEngine run left in its work dir: the dumped config and the logged metrics."""
import glob
import json
import os.path as osp
from typing import Optional

__all__ = ['work_dir_config', 'best_metric', 'best_checkpoint']


def work_dir_config(work_dir: str) -> str:
    """The config MMEngine dumped into a work dir (``<work_dir>/*.py``, else the newest
    ``<work_dir>/<timestamp>/vis_data/config.py``)."""
    found = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if not found:
        found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'config.py')))
    if not found:
        raise FileNotFoundError(f'no dumped config in {work_dir}')
    return max(found, key=osp.getmtime)


def best_metric(work_dir: str, metric: str = 'accuracy/top1') -> Optional[float]:
    """The highest ``metric`` logged under ``work_dir`` (MMEngine's
    ``<timestamp>/vis_data/scalars.json``, else the ``vis_data/<timestamp>.json`` logs)."""
    paths = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if not paths:
        paths = glob.glob(osp.join(work_dir, '*', 'vis_data', '*.json'))
    best = None
    for path in paths:
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and metric in record:
                    v = float(record[metric])
                    best = v if best is None else max(best, v)
    return best


def best_checkpoint(work_dir: str) -> str:
    """The one ``best_*.pth`` of a work dir: what MMEngine's CheckpointHook with ``save_best``
    keeps (the checkpoint of the highest validation metric)."""
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
    if len(best) != 1:
        found = ', '.join(osp.basename(p) for p in sorted(glob.glob(osp.join(work_dir, '*.pth'))))
        raise FileNotFoundError(
            f'{work_dir} holds {len(best)} best_*.pth checkpoints (found: '
            f'{found or "no checkpoint"}); train with default_hooks.checkpoint.save_best '
            '(the configs/rm recipes set save_best="auto") or pass the checkpoint file')
    return best[0]
