"""The transfer table of the downstream chain: statistics and Markdown, a function of the
fine-tuning run records alone.

Everything here reads the records' scores on the **test** canvases, their seeds, times, CPU and
threads, so that ``tools/downstream.py --report DIR`` regenerates the table from the published
records (``results/transfer/``) bit for bit. No number of the table comes from the val canvases
(the records keep the val scores beside, for choices).

Statistics (DESIGN.md §6):

* per model, metric and pretraining method: mean ± sample std over all its runs (every
  pretraining seed x fine-tuning seed; a scratch method has no pretraining seed);
* per model and metric, the paired differences RM − CutMix and RM − baseline with a 95 %
  interval: paired t (``scipy.stats.ttest_rel``), see :func:`paired_difference` for how runs
  are paired.
"""
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from ..run import fmt_time
from ..stats import mean_std, paired_t
from .models import (COMPARISONS, DOWNSTREAM_MODELS, LONG_METHODS, METHOD_ORDER, PAPER_METHODS,
                     check_split)

__all__ = ['summarize', 'paired_difference', 'on_split', 'markdown_table']


def _seconds(run: Dict) -> float:
    """A run's wall time over all its attempts (older records: its last train + test)."""
    return run['wall_s'] if run.get('wall_s') is not None else run['train_s'] + run['test_s']


def _time_rows(runs: Sequence[Dict], models: Sequence[str]) -> List[str]:
    """The time table's rows: the mean wall time per run of each model, the 1x-schedule
    methods in one row (first) and each :data:`LONG_METHODS` method in its own, so a 3x run
    never inflates the 1x figure; a model a method did not run is left blank."""
    one_x = 'fine-tune + test, mean per run'
    rows: Dict[str, Dict[str, List[float]]] = {}
    for r in runs:
        label = f'{r["method"]}, mean per run' if r['method'] in LONG_METHODS else one_x
        rows.setdefault(label, {}).setdefault(r['model'], []).append(_seconds(r))
    return [f'| {label} | ' + ' | '.join(
        fmt_time(statistics.mean(by[m])) if m in by else '' for m in models) + ' |'
        for label, by in sorted(rows.items(), key=lambda item: item[0] != one_x)]


def _pair(run: Dict) -> Tuple[int, int]:
    """(pretraining seed, fine-tuning seed); -1 for no pretraining (scratch)."""
    p = run.get('pretrain_seed')
    return (-1 if p is None else int(p), int(run['seed']))


def _methods(runs: Sequence[Dict]) -> List[str]:
    found = {r['method'] for r in runs}
    return [m for m in METHOD_ORDER if m in found] + sorted(found - set(METHOD_ORDER))


def summarize(results: Sequence[Dict]) -> Dict:
    """``{model: {method: {column: {mean, std, n, values}, 'seconds': mean}}}`` of the test
    scores; std is the sample standard deviation over the runs (0 for one run); ``values`` in
    (pretraining seed, fine-tuning seed) order."""
    out: Dict = {}
    for r in results:
        out.setdefault(r['model'], {}).setdefault(r['method'], []).append(r)
    summary: Dict = {}
    for model in sorted(out):
        for method in _methods([r for runs in out[model].values() for r in runs]):
            runs = sorted(out[model][method], key=_pair)
            entry = {}
            for column in runs[0]['scores']:
                values = [r['scores'][column] for r in runs]
                mean, std = mean_std(values)
                entry[column] = dict(mean=round(mean, 2), std=round(std, 2), n=len(values),
                                     values=values)
            entry['seconds'] = round(statistics.mean(_seconds(r) for r in runs), 1)
            summary.setdefault(model, {})[method] = entry
    return summary


def paired_difference(results: Sequence[Dict], model: str, column: str, method: str,
                      other: str, confidence: float = 0.95) -> Optional[Dict]:
    """``method`` − ``other`` on ``model``'s ``column`` (test scores) over matched runs.

    Pairing: the run of ``method`` with pretraining seed ``p`` and fine-tuning seed ``s`` pairs
    with the run of ``other`` of the same ``(p, s)`` (same fine-tuning seed: same head init and
    data order; same pretraining seed: the pretrainings of both methods started alike). Runs
    without a partner are left out. The interval is the paired t interval of
    ``scipy.stats.ttest_rel(x_method, x_other).confidence_interval(confidence)``: mean
    difference ± t(n - 1) x sd / sqrt(n). It treats the n pairs as independent; pairs that share
    a pretraining seed are not, so with few pretraining seeds the interval understates the part
    of the spread that comes from pretraining.

    Returns ``dict(n, mean, low, high, pvalue)`` rounded to 2 decimals (pvalue 4), ``low`` /
    ``high`` / ``pvalue`` None for fewer than 2 pairs; None if no pair.
    """
    def by_pair(m):
        return {_pair(r): r['scores'][column] for r in results
                if r['model'] == model and r['method'] == m and column in r['scores']}
    a, b = by_pair(method), by_pair(other)
    keys = sorted(set(a) & set(b))
    if not keys:
        return None
    mean, low, high, pvalue = paired_t([a[k] for k in keys], [b[k] for k in keys], confidence)
    return dict(n=len(keys), mean=round(mean, 2),
                low=None if low is None else round(low, 2),
                high=None if high is None else round(high, 2),
                pvalue=None if pvalue is None else round(pvalue, 4))


def _signed(v: float) -> str:
    return f'{v:+.2f}'


def _values(runs: Sequence[Dict], field: str) -> str:
    values = sorted({str(r.get(field)) for r in runs if r.get(field) is not None})
    return ', '.join(values) if values else '?'


def on_split(results: Sequence[Dict], split: str) -> List[Dict]:
    """``results`` with the scores of ``split``: 'test' (the table's, as they are) or 'val'
    (each run's ``val_scores`` in place of its ``scores``, for choices made with this module's
    statistics; a val table is never the reported one)."""
    check_split(split)
    if split == 'test':
        return list(results)
    missing = [f'{r["model"]} {r["method"]} seed {r["seed"]}' for r in results
               if not r.get('val_scores')]
    if missing:
        raise RuntimeError(f'no val scores in the records of {", ".join(missing)}')
    return [dict(r, scores=r['val_scores']) for r in results]


def markdown_table(out: Dict, split: str = 'test') -> str:
    """The transfer table from ``out['runs']`` (fine-tuning results) alone: one row per
    pretraining method, one column per model metric (test canvases: mean ± sample std (runs)),
    the paired differences RM − CutMix and RM − baseline with their 95 % intervals, the
    fine-tuning time per model and the paper's numbers. ``split='val'``: the same of the val
    canvases' scores (:func:`on_split`), headed as such."""
    runs = sorted(on_split(out['runs'], split),
                  key=lambda r: (r['model'], r['method'], _pair(r)))
    summary = summarize(runs)
    models = [m for m in DOWNSTREAM_MODELS if m in summary]
    methods = _methods(runs)
    columns = [(m, c) for m in models for c, _, _ in DOWNSTREAM_MODELS[m].metrics]
    head = [f'{DOWNSTREAM_MODELS[m].title} {c}' for m, c in columns]
    title = ('Test canvases, mean ± sample std (runs):' if split == 'test' else
             'VAL canvases (for choices; never the reported table), mean ± sample std (runs):')
    lines = [title, '',
             '| pretraining | ' + ' | '.join(head) + ' |',
             '| --- | ' + ' | '.join('---' for _ in head) + ' |']
    for method in methods:
        cells = []
        for m, c in columns:
            e = summary[m].get(method, {}).get(c)
            cells.append('' if e is None else f'{e["mean"]:.2f} ± {e["std"]:.2f} ({e["n"]})')
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    diff_rows = []
    for a, b in COMPARISONS:
        if a not in methods or b not in methods:
            continue
        cells = []
        for m, c in columns:
            d = paired_difference(runs, m, c, a, b)
            if d is None:
                cells.append('')
            elif d['low'] is None:
                cells.append(f'{_signed(d["mean"])} ({d["n"]})')
            else:
                cells.append(f'{_signed(d["mean"])} [{_signed(d["low"])}, '
                             f'{_signed(d["high"])}] ({d["n"]})')
        diff_rows.append(f'| {a} − {b} | ' + ' | '.join(cells) + ' |')
    if diff_rows:
        lines += ['', 'Paired differences, mean [95 % interval] (pairs): runs matched by '
                  '(pretraining seed, fine-tuning seed), paired t (scipy.stats.ttest_rel):', '',
                  '| difference | ' + ' | '.join(head) + ' |',
                  '| --- | ' + ' | '.join('---' for _ in head) + ' |'] + diff_rows
    pre = sorted({r['pretrain_seed'] for r in runs if r.get('pretrain_seed') is not None})
    lines += ['', f'Fine-tuning seeds: {_values(runs, "seed")}; pretraining seeds: '
              f'{", ".join(map(str, pre)) if pre else "none"}. Segmentation mIoU: over the 10 '
              'object classes (background left out); mmseg\'s 11-class mIoU beside it. ' + (
                  'Every number is a test-canvas score; the val scores are in the run records. '
                  if split == 'test' else 'Every number is a val-canvas score. ') +
              f'CPU: {_values(runs, "cpu")}; {_values(runs, "threads")} torch thread(s) per '
              f'run, {_values(runs, "jobs")} run(s) at a time.', '',
              '| model | ' + ' | '.join(DOWNSTREAM_MODELS[m].title for m in models) + ' |',
              '| --- | ' + ' | '.join('---' for _ in models) + ' |',
              *_time_rows(runs, models), '',
              'Paper (Tables 7-9, ResNet-50 pretrained on ImageNet, COCO / ADE20K):', '',
              '| pretraining | ' + ' | '.join(head) + ' |',
              '| --- | ' + ' | '.join('---' for _ in head) + ' |']
    for i, method in enumerate(PAPER_METHODS):
        lines.append(f'| {method} | ' + ' | '.join(
            f'{DOWNSTREAM_MODELS[m].paper[c][i]:.2f}' if c in DOWNSTREAM_MODELS[m].paper
            else '' for m, c in columns) + ' |')
    return '\n'.join(lines) + '\n'
