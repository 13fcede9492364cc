"""The transfer table of the downstream chain (:mod:`mmrm.analysis.transfer`): the downstream
models as data (``configs/downstream/fashion_mnist/models.json``, with the paper's numbers),
mean +- sample std over seeds, and the Markdown table."""
import json
import os.path as osp
import statistics
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

from .runs import REPO_ROOT, fmt_time, mean_std

__all__ = ['DownstreamModel', 'DOWNSTREAM_MODELS', 'PAPER_METHODS', 'load_models', 'summarize',
           'markdown_table']

MODELS_FILE = 'configs/downstream/fashion_mnist/models.json'
PAPER_METHODS = ('baseline', 'cutmix', 'rm')


@dataclass(frozen=True)
class DownstreamModel:
    """One downstream model of the paper: its offline config and what it is scored by."""
    name: str
    title: str
    config: str
    task: str  # 'det' or 'seg': their loops differ (epochs / iterations)
    #: (column name, key in the evaluator's metrics, scale to percent)
    metrics: Tuple[Tuple[str, str, float], ...]
    #: the paper's ResNet-50 numbers per metric column, in :data:`PAPER_METHODS` order
    paper: Dict[str, Tuple[float, ...]]
    #: rough minutes of one fine-tuning on one core (longest first; the first ETA)
    minutes: float = 5.


def load_models(path: str = osp.join(REPO_ROOT, MODELS_FILE)) -> Dict[str, DownstreamModel]:
    """``{name: DownstreamModel}`` of the models file, in its order."""
    with open(path) as f:
        spec = json.load(f)
    return {
        m['name']: DownstreamModel(
            m['name'], m['title'], m['config'], m['task'],
            tuple((x['column'], x['key'], float(x['scale'])) for x in m['metrics']),
            {c: tuple(v[p] for p in PAPER_METHODS) for c, v in m['paper'].items()},
            float(m['minutes']))
        for m in spec['models']
    }


DOWNSTREAM_MODELS: Dict[str, DownstreamModel] = load_models()


def _seconds(run: Dict) -> float:
    """A run's wall time over all its attempts (older records: its last train + test)."""
    return run['wall_s'] if run.get('wall_s') is not None else run['train_s'] + run['test_s']


def summarize(results: Sequence[Dict]) -> Dict:
    """``{model: {method: {column: {mean, std, n, values}, 'seconds': mean}}}``; std is the
    sample standard deviation over seeds (0 for one seed)."""
    out: Dict = {}
    for r in results:
        out.setdefault(r['model'], {}).setdefault(r['method'], []).append(r)
    summary: Dict = {}
    for model, per_method in out.items():
        for method, runs in per_method.items():
            entry = {}
            for column in runs[0]['scores']:
                values = [r['scores'][column] for r in sorted(runs, key=lambda r: r['seed'])]
                mean, std = mean_std(values)
                entry[column] = dict(mean=round(mean, 2), std=round(std, 2), n=len(values),
                                     values=values)
            entry['seconds'] = round(statistics.mean(_seconds(r) for r in runs), 1)
            summary.setdefault(model, {})[method] = entry
    return summary


def markdown_table(out: Dict) -> str:
    """The transfer table: one row per pretraining method, one column per model metric
    (mean +- std over seeds), then the fine-tuning time per model and the paper's numbers."""
    summary = out['summary']
    models = [m for m in DOWNSTREAM_MODELS if m in summary]
    methods = []
    for m in models:
        methods += [k for k in summary[m] if k not in methods]
    columns = [(m, c) for m in models for c, _, _ in DOWNSTREAM_MODELS[m].metrics]
    head = [f'{DOWNSTREAM_MODELS[m].title} {c}' for m, c in columns]
    lines = ['| pretraining | ' + ' | '.join(head) + ' |',
             '| --- | ' + ' | '.join('---' for _ in head) + ' |']
    seeds = sorted({r['seed'] for r in out['runs']})
    for method in methods:
        cells = []
        for m, c in columns:
            e = summary[m].get(method, {}).get(c)
            cell = '' if e is None else f'{e["mean"]:.2f} ± {e["std"]:.2f}' if e['n'] > 1 \
                else f'{e["mean"]:.2f}'
            if e is not None and e['n'] != len(seeds):  # fewer seeds than the table's
                cell += f' ({e["n"]} seed{"s" if e["n"] > 1 else ""})'
            cells.append(cell)
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    meta = out.get('meta', {})
    lines += ['', f'Seeds: {", ".join(map(str, seeds))} (mean ± sample std where more than one). '
              f'CPU: {meta.get("cpu", "?")}, {meta.get("threads", "?")} torch threads per run, '
              f'{meta.get("jobs", "?")} run(s) at a time.', '',
              '| model | ' + ' | '.join(DOWNSTREAM_MODELS[m].title for m in models) + ' |',
              '| --- | ' + ' | '.join('---' for _ in models) + ' |',
              '| fine-tune + test, mean per run | ' + ' | '.join(
                  fmt_time(statistics.mean(e['seconds'] for e in summary[m].values()))
                  for m in models) + ' |', '',
              'Paper (Tables 7-9, ResNet-50 pretrained on ImageNet, COCO / ADE20K):', '',
              '| pretraining | ' + ' | '.join(head) + ' |',
              '| --- | ' + ' | '.join('---' for _ in head) + ' |']
    for i, method in enumerate(PAPER_METHODS):
        lines.append(f'| {method} | ' + ' | '.join(
            f'{DOWNSTREAM_MODELS[m].paper[c][i]:.2f}' for m, c in columns) + ' |')
    return '\n'.join(lines) + '\n'
