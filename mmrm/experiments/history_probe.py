"""The ranking study's P2 (``docs/en/results/ranking.md``): what RM's trained networks see of
the history at 28 and at 56 px (:mod:`mmrm.analysis.history_boxes`), for the RM models of arm 1
(scarce-20) and arm 3 (scarce-20 at 56 px), seeds 0-4.

A model is the comparison run's own training when this machine's run cache has it (a run of
the same key); a run reused from its published record left no checkpoint here, so its training
is repeated into ``<work_root>/probe/<regime>/rm_seed<k>/train`` with the run's own command and
seed (the record stays the published one; the probe reads only the weights).
"""
import glob
import os
import os.path as osp
import subprocess
from typing import Callable, Dict, List, Sequence

from .compare import REGIMES, comparison_runs, regime_options, train_command
from .keys import parse_options
from .ranking import ARMS
from .records import read_json, write_json_atomic
from .run import RESULT, tool_env
from .stats import mean_std

__all__ = ['PROBE_ARMS', 'PROBE_SEEDS', 'probe_models', 'run_probe', 'format_probe']

PROBE_ARMS = ('scarce-20', 'resize-56px')
PROBE_SEEDS = (0, 1, 2, 3, 4)


def probe_models(work_root: str, data_root: str, seeds: Sequence[int] = PROBE_SEEDS,
                 log: Callable[[str], None] = print) -> List[Dict]:
    """``[{arm, regime, seed, work_dir}]`` of the RM trainings the probe reads, training the
    ones this machine does not have (one thread each, one after the other)."""
    out = []
    for arm in PROBE_ARMS:
        regime = ARMS[arm]['regime']
        for run in comparison_runs(work_root, regime, ['rm'], seeds, data_root):
            seed = run.key.seed
            train = None
            for folder in sorted(glob.glob(osp.join(run.root, f'{run.stem}-*'))):
                record = read_json(osp.join(folder, RESULT))
                if isinstance(record, dict) and not run.key.differs(record.get('key')):
                    train = osp.join(folder, 'train')
            if train is None or not glob.glob(osp.join(train, 'epoch_*.pth')):
                train = osp.join(work_root, 'probe', regime, f'rm_seed{seed}', 'train')
                if not glob.glob(osp.join(train, 'epoch_*.pth')):
                    log(f'[probe] {regime} rm seed {seed}: no checkpoint here; training it '
                        f'into {train}')
                    os.makedirs(train, exist_ok=True)
                    config = run.body.keywords['config']
                    cmd = train_command(config, train, regime_options(REGIMES[regime]), seed,
                                        data_root)
                    with open(osp.join(train, 'train.log'), 'w') as f:
                        subprocess.run(cmd, check=True, env=tool_env(1), stdout=f,
                                       stderr=subprocess.STDOUT)
            out.append(dict(arm=arm, regime=regime, seed=seed, work_dir=train))
    return out


def run_probe(work_root: str, data_root: str, out: str,
              log: Callable[[str], None] = print) -> Dict:
    """Probe every model of :func:`probe_models`; write ``out`` (rows without local paths)."""
    from mmrm.analysis.history_boxes import RELATIVE_SIDES, probe_work_dir
    opts = parse_options([f'test_dataloader.dataset.data_root={data_root}'])
    rows = []
    for m in probe_models(work_root, data_root, log=log):
        row = dict(arm=m['arm'], regime=m['regime'], **probe_work_dir(m['work_dir'], opts))
        if row['seed'] != m['seed']:
            raise RuntimeError(f'{m["work_dir"]} was trained with seed {row["seed"]}, not '
                               f'{m["seed"]}')
        log(f'[probe] {m["regime"]} seed {m["seed"]}: ' + ', '.join(
            f'{k} {v:.1f}' for k, v in row['accuracy'].items()))
        rows.append(row)
    result = dict(relative_sides=list(RELATIVE_SIDES), rows=rows)
    write_json_atomic(out, result)
    return result


def format_probe(result: Dict) -> str:
    """P2's table: accuracy (%) on the box alone by relative side, 28 px vs 56 px."""
    by = {}
    for row in result['rows']:
        for side, acc in row['accuracy'].items():
            by.setdefault((side, row['image_size']), []).append(acc)
    sizes = sorted({row['image_size'] for row in result['rows']})
    sides = [f'{r:.1f}' for r in result['relative_sides']] + ['1.0']
    head = ' | '.join(f'{s} px: accuracy (%)' for s in sizes)
    lines = [f'| relative box side (box side in px) | {head} |',
             '| ---: | ' + ' | '.join('---:' for _ in sizes) + ' |']
    for side in sides:
        cells = []
        for s in sizes:
            v = by.get((side, s), [])
            cells.append('—' if not v else '{:.1f} ± {:.1f} ({})'.format(*mean_std(v), len(v)))
        px = ' / '.join(str(max(1, int(float(side) * s))) for s in sizes)
        label = 'whole image' if side == '1.0' else f'{side} ({px} px)'
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
