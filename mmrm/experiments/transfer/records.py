"""The chain's records: a fine-tuning's result as the table reads it, the published record
folder (``results/transfer/``: ``<model>/<run>.json``, ``pretrain/<run>.json``) and the table
regenerated from it alone, bit for bit."""
import contextlib
import glob
import json
import os
import os.path as osp
import shutil
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .models import COMPARISONS, DOWNSTREAM_MODELS
from ..records import write_json_atomic
from .report import markdown_table, paired_difference, summarize

__all__ = ['run_result', 'differences', 'load_records', 'records_table', 'report_records',
           'export_records', 'write_text', 'write_results', 'canvas_meta', 'pretrain_label']


def run_result(record: Dict) -> Dict:
    """A fine-tuning's result with what its run record adds: wall time, key, commit, CPU and
    threads (what the table is made of)."""
    return dict(record['result'], wall_s=record['wall_s'], key=record['digest'],
                commit=record.get('commit'), cpu=record.get('cpu'),
                threads=record.get('threads'))


def differences(results: Sequence[Dict]) -> Dict:
    """``{model: {column: {'rm - cutmix': paired_difference, ...}}}`` for results.json."""
    out: Dict = {}
    for model in sorted({r['model'] for r in results}):
        for column, _, _ in DOWNSTREAM_MODELS[model].metrics:
            for a, b in COMPARISONS:
                d = paired_difference(results, model, column, a, b)
                if d is not None:
                    out.setdefault(model, {}).setdefault(column, {})[f'{a} - {b}'] = d
    return out


def load_records(folder: str) -> Tuple[List[Dict], List[Dict]]:
    """The run records in ``folder`` (what :func:`export_records` wrote:
    ``<model>/<run>.json``, ``pretrain/<run>.json``), in path order: ``(fine-tunings,
    pretrainings)``, each a ``result.json`` as the run wrote it. A file that is not a run record
    (truncated, no key / result) is an error naming it."""
    if not osp.isdir(folder):
        raise RuntimeError(f'{folder}: no such folder (tools/downstream.py --export {folder} '
                           'writes the records there)')
    finetunes, pretrainings = [], []
    for path in sorted(glob.glob(osp.join(folder, '**', '*.json'), recursive=True)):
        try:
            with open(path) as f:
                record = json.load(f)
        except ValueError as exc:
            raise RuntimeError(f'{path} is not a run record (truncated?): {exc}') from exc
        if not (isinstance(record, dict) and 'key' in record and 'result' in record):
            raise RuntimeError(f'{path} is not a run record (no key / result)')
        # a fine-tuning scores a model; a pretraining is kept for the trace
        (finetunes if 'model' in record['result'] else pretrainings).append(record)
    return finetunes, pretrainings


def records_table(folder: str) -> str:
    """The transfer table made from the fine-tuning records in ``folder`` alone."""
    finetunes, _ = load_records(folder)
    if not finetunes:
        raise RuntimeError(f'no fine-tuning record in {folder}')
    return markdown_table(dict(runs=[run_result(r) for r in finetunes]))


def report_records(folder: str, log: Callable[[str], None] = print) -> str:
    """:func:`records_table` of ``folder``, written to ``folder/results.md``: the same bytes
    as the chain's own ``results.md`` for the same records."""
    table = records_table(folder)
    write_text(osp.join(folder, 'results.md'), table)
    log('\n' + table)
    return table


def export_records(sources: Dict[str, str], dest: str,
                   log: Callable[[str], None] = print) -> List[str]:
    """Copy run records ``{relative name: result.json}`` to ``dest/<name>.json``, remove the
    records of an earlier export that are not among them, and write the table made from them
    alone (:func:`report_records`). Returns the files."""
    dest = osp.abspath(dest)
    wanted = {osp.join(dest, rel + '.json'): src for rel, src in sources.items()}
    for old in glob.glob(osp.join(dest, '**', '*.json'), recursive=True):
        if old not in wanted:  # a record of an earlier export: it is not behind the table
            record = None
            with contextlib.suppress(OSError, ValueError):
                with open(old) as f:
                    record = json.load(f)
            if isinstance(record, dict) and 'key' in record and 'result' in record:
                os.remove(old)
    for target, source in sorted(wanted.items()):
        os.makedirs(osp.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
    log(f'[export] {len(wanted)} run records to {dest}')
    report_records(dest, log=log)
    return sorted(wanted)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (tmp file + ``os.replace``)."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def canvas_meta(root: str) -> Optional[Dict]:
    """The identity of a canvas dataset (its options and counts, from ``meta.json``)."""
    try:
        with open(osp.join(root, 'meta.json')) as f:
            meta = json.load(f)
        return dict(options=meta['options'], counts=meta['counts'], instances=meta['instances'])
    except (OSError, KeyError, ValueError):
        return None


def pretrain_label(method: str, seed: Optional[int]) -> str:
    return method if seed is None else f'{method}_seed{seed}'


def write_results(work_dir: str, split: str, meta: Dict, results: List[Dict],
                  pretrain_records: Dict, log: Callable[[str], None] = print) -> Dict:
    """Write a chain's ``results.json`` (``meta``, the pretraining entries, the fine-tuning
    results, their summary and paired differences) and the table of ``split`` (``results.md``
    for test, ``results_val.md`` for val; atomically), and print that table."""
    out = dict(meta=meta, pretrain=pretrain_records, runs=results, summary=summarize(results),
               differences=differences(results))
    os.makedirs(work_dir, exist_ok=True)
    write_json_atomic(osp.join(work_dir, 'results.json'), out)
    table = markdown_table(dict(runs=results), split=split)
    write_text(osp.join(work_dir, 'results.md' if split == 'test' else 'results_val.md'), table)
    log('\n' + table)
    log(f'metrics of every run: {osp.join(work_dir, "results.json")}')
    return out
