"""What the comparison's records say (:mod:`mmrm.experiments.compare` runs them): the
records loaded from a run-cache folder or their committed copies, exported as
``<method>_seed<k>.json``, summarised per method and formatted as the offline Tables 1 / 6.

The table (:func:`format_table`) reports, per method, the test error after the last epoch
(mean ± sample std over seeds), the test error of the best-on-val epoch, and the paired
difference from RM (same seeds) with its 95 % Student-t interval, beside the paper's numbers.
The regime selection (:func:`selection_gain`, :func:`format_selection`) reads ``val`` only.
"""
import json
import os
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence

from .compare import METHOD_NAMES, METHODS, NOT_RUN, REGIMES, TABLE_SEEDS
from .stats import mean_std, paired_t

__all__ = [
    'paired_interval', 'load_records', 'export_records', 'summarise', 'format_table',
    'selection_gain', 'format_selection'
]


def paired_interval(a: Sequence[float], b: Sequence[float]) -> Optional[tuple]:
    """Mean of ``a - b`` over paired values and its 95 % Student-t interval ``(mean, lo, hi)``
    (:func:`mmrm.experiments.stats.paired_t`; None with fewer than 2 pairs)."""
    if len(list(zip(a, b))) < 2:
        return None
    return paired_t(a, b)[:3]


def load_records(folder: str) -> List[Dict]:
    """The run records (``result.json`` of the run cache, or their committed copies
    ``<method>_seed<k>.json``) under ``folder``. A JSON file there that does not parse or is
    not a comparison record (no key, no method) is an error naming it: a table is never made
    without one of its runs."""
    records = []
    if not osp.isdir(folder):
        return records
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if osp.isdir(path):
            path = osp.join(path, 'result.json')
        if not (path.endswith('.json') and osp.isfile(path)):
            continue
        with open(path) as f:
            try:
                record = json.load(f)
            except ValueError as exc:
                raise RuntimeError(f'{path} is not a run record (truncated?): {exc}; restore '
                                   'it (git checkout) or run that run again') from exc
        if not (isinstance(record, dict) and 'key' in record
                and 'method' in (record.get('result') or {})):
            raise RuntimeError(f'{path} is not a comparison run record (no key / method)')
        records.append(record)
    return records


def export_records(records: Sequence[Dict], folder: str) -> List[str]:
    """Copy records to ``folder`` as ``<method>_seed<k>.json`` (what ``results/`` holds)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for r in records:
        c = r['result']
        path = osp.join(folder, f'{c["method"]}_seed{c["seed"]}.json')
        with open(path, 'w') as f:
            json.dump(r, f, indent=1, sort_keys=True)
            f.write('\n')
        paths.append(path)
    return paths


def summarise(records: Sequence[Dict], methods: Sequence[str] = METHOD_NAMES,
              reference: str = 'rm') -> List[Dict]:
    """One row per method with records: test errors (last epoch, best-on-val epoch), their mean
    and std, the val error of the best epoch, and the paired difference from ``reference``
    over the seeds both have."""
    by = {}
    for r in records:
        c = r['result']
        by.setdefault(c['method'], {})[c['seed']] = r
    rows = []
    ref = by.get(reference, {})
    for m in METHODS:
        name = m['name']
        if name not in methods or name not in by:
            continue
        seeds = sorted(by[name])
        res = [by[name][s]['result'] for s in seeds]
        last = [100. - x['test_last'] for x in res]
        best = [100. - x['test_best'] for x in res]
        row = dict(method=name, kind=m['kind'], setting=m['setting'], paper=m['paper'],
                   seeds=seeds, test_last=last, test_best=best,
                   val_best=[100. - x['val_best'] for x in res],
                   best_epochs=[x['best_epoch'] for x in res],
                   minutes=statistics.mean(by[name][s]['wall_s'] for s in seeds) / 60)
        for k in ('test_last', 'test_best', 'val_best'):
            row[k + '_mean'], row[k + '_std'] = mean_std(row[k])
        shared = [s for s in seeds if s in ref]
        row['vs_ref'] = None if name == reference else paired_interval(
            [100. - by[name][s]['result']['test_last'] for s in shared],
            [100. - ref[s]['result']['test_last'] for s in shared])
        rows.append(row)
    return rows


def format_table(rows: Sequence[Dict], reference: str = 'rm') -> str:
    """The Markdown table of :func:`summarise` rows."""
    lines = [
        '| method | setting | test err, last epoch (%) | test err, best-on-val epoch (%) | '
        f'last-epoch err - {reference} [95 % CI] | paper T1 / T6 | seeds | min / run |',
        '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'
    ]
    for r in rows:
        d = r['vs_ref']
        diff = '—' if d is None else f'{d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}]'
        paper = ' / '.join(f'{r["paper"][t]:.2f}' if t in r['paper'] else '—'
                           for t in ('Table 1', 'Table 6'))
        lines.append(
            f'| {r["method"]} | {r["setting"]} | {r["test_last_mean"]:.2f} ± '
            f'{r["test_last_std"]:.2f} | {r["test_best_mean"]:.2f} ± {r["test_best_std"]:.2f} | '
            f'{diff} | {paper} | {len(r["seeds"])} | {r["minutes"]:.1f} |')
    for name, why in NOT_RUN.items():
        lines.append(f'| {name} | not run: {why} | — | — | — | 2.55 / — | 0 | — |')
    return '\n'.join(lines)


def selection_gain(records: Sequence[Dict],
                   seeds: Sequence[int] = TABLE_SEEDS) -> Optional[Dict]:
    """The selection rule's numbers, on ``val`` only: baseline's and CutMix's last-epoch val
    error ``(mean, std)`` over ``seeds`` and ``gain``, CutMix's lead in baseline stds (None
    without spread); None when either method has no record of those seeds."""
    vals: Dict[str, List[float]] = {}
    for r in records:
        res = r['result']
        if res['seed'] in seeds:
            vals.setdefault(res['method'], []).append(100. - res['val_last'])
    if 'baseline' not in vals or 'cutmix' not in vals:
        return None
    (bm, bs), (cm, cs) = mean_std(vals['baseline']), mean_std(vals['cutmix'])
    return dict(baseline=(bm, bs), cutmix=(cm, cs), gain=(bm - cm) / bs if bs > 0 else None,
                values=vals)


def format_selection(records_by_regime: Dict[str, Sequence[Dict]]) -> str:
    """How the regime was chosen, on ``val`` only: per regime, baseline and CutMix's val error
    after the last epoch (mean ± std over seeds) and CutMix's gain in baseline stds (the
    criterion: >= 2)."""
    lines = ['| regime | setting | baseline val err (%) | CutMix val err (%) | gain / baseline '
             'std | seeds |', '| --- | --- | ---: | ---: | ---: | ---: |']
    for regime, records in records_by_regime.items():
        sel = selection_gain(records)
        if sel is None:
            continue
        (bm, bs), (cm, cs), vals = sel['baseline'], sel['cutmix'], sel['values']
        gain = '—' if sel['gain'] is None else f'{sel["gain"]:.1f}'
        r = REGIMES[regime]
        setting = (f'{r["train_per_class"]} a class, batch {r["batch_size"]}, '
                   f'{r["max_epochs"]} epochs')
        lines.append(f'| {regime} | {setting} | {bm:.2f} ± {bs:.2f} | {cm:.2f} ± {cs:.2f} | '
                     f'{gain} | {min(len(vals["baseline"]), len(vals["cutmix"]))} |')
    return '\n'.join(lines)
