"""What a finished MMEngine run left in its work dir: the dumped config and the logged metrics."""
import glob
import json
import os.path as osp
from typing import Optional

__all__ = ['work_dir_config', 'best_metric']


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
