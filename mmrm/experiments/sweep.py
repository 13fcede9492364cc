"""Sweeps over RM's alpha / omega (paper Figs. 4-5): one record per work dir, mean and std per
value. ``tools/sweep.py`` launches the runs, ``tools/analysis_tools/plot_sweep.py`` draws them
(:func:`mmrm.visualization.plot_sweep`)."""
from collections import OrderedDict
from typing import Callable, List, Optional, Sequence

from mmrm.analysis.variants import augments_of, is_rm_augment

from .stats import mean_std
from .work_dirs import best_metric, work_dir_config

__all__ = ['SWEEP_KEYS', 'dotted_get', 'collect_sweep', 'summarise_sweep', 'format_sweep_table']

SWEEP_KEYS = dict(alpha='model.train_cfg.augments.alpha', omega='model.roi_head.omega')


def dotted_get(cfg: dict, key: str):
    obj = cfg
    for part in key.split('.'):
        if isinstance(obj, (list, tuple)):
            if len(obj) != 1:
                raise KeyError(key)
            obj = obj[0]
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(key)
        obj = obj[part]
    return obj


def _default_of(param: str, cfg: dict):
    """The component default of alpha / omega when the config leaves it out."""
    import inspect
    from mmrm.models import RecursiveMixBatchAugment, RoIConsistencyHead
    model = cfg.get('model', {})
    if param == 'alpha' and any(is_rm_augment(a) for a in augments_of(model)):
        return inspect.signature(RecursiveMixBatchAugment).parameters['alpha'].default
    if param == 'omega' and isinstance(model.get('roi_head'), dict):
        return inspect.signature(RoIConsistencyHead).parameters['omega'].default
    return None


def collect_sweep(work_dirs: Sequence[str], param: str = 'alpha', key: Optional[str] = None,
                  metric: str = 'accuracy/top1', log: Callable = print) -> List[dict]:
    """One record per work dir: ``value`` of the swept parameter (from the dumped config),
    ``best`` metric and ``error = 100 - best``. Work dirs without a metric are skipped."""
    from mmengine.config import Config
    key = key or SWEEP_KEYS[param]
    records = []
    for wd in work_dirs:
        cfg_path = work_dir_config(wd)
        cfg = Config.fromfile(cfg_path).to_dict()
        try:
            value = dotted_get(cfg, key)
        except KeyError:
            value = _default_of(param, cfg)
            if value is None:
                raise ValueError(f'{wd}: the config {cfg_path} has no {key}')
        best = best_metric(wd, metric)
        if best is None:
            log(f'warning: {wd}: no {metric} logged, skipped')
            continue
        records.append(dict(work_dir=wd, value=float(value), best=best, error=100. - best))
    return records


def summarise_sweep(records: Sequence[dict]) -> List[dict]:
    """Group by value: ``n``, ``mean`` and ``std`` (sample std, 0 for one run) of the error."""
    groups = OrderedDict()
    for r in sorted(records, key=lambda r: r['value']):
        groups.setdefault(r['value'], []).append(r['error'])
    return [dict(value=v, n=len(e), mean=mean_std(e)[0], std=mean_std(e)[1])
            for v, e in groups.items()]


def format_sweep_table(summary: Sequence[dict], param: str) -> str:
    lines = [f'| {param} | runs | top-1 err mean (%) | std |', '| ---: | ---: | ---: | ---: |']
    for s in summary:
        lines.append(f"| {s['value']:g} | {s['n']} | {s['mean']:.2f} | {s['std']:.2f} |")
    return '\n'.join(lines)
