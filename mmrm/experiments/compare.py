"""The offline counterpart of the paper's Tables 1 and 6: every regularizer that applies to the
Fashion-MNIST demo network, trained in one regime, several seeds each, scored on the test split.

A regime is a fixed class-balanced subset of the training split, a batch size and a schedule
(:data:`REGIMES`); the regime the table uses was chosen on the validation split (DESIGN.md §6)
from the baseline and CutMix runs of each candidate. Each (regime, method, seed) is a run of
the run cache (:mod:`mmrm.experiments.run`): it trains with ``tools/train.py`` (validating on
``val`` every ``val_interval`` epochs, keeping the best-on-val checkpoint) and then
:mod:`mmrm.experiments.evaluate` scores the last and the best-on-val checkpoints on ``test``.

The table (:func:`format_table`) reports, per method, the test error after the last epoch
(mean ± sample std over seeds), the test error of the best-on-val epoch, and the paired
difference from RM (same seeds) with its 95 % Student-t interval, beside the paper's numbers.
"""
import functools
import json
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional, Sequence

from .keys import RunKey, config_digest, files_digest
from .records import REPO_ROOT
from .run import Run
from .stats import mean_std, paired_t

__all__ = [
    'Method', 'METHODS', 'REGIMES', 'DEFAULT_REGIME', 'TABLE_SEEDS',
    'TABLE_REGIMES', 'regime_options', 'data_options',
    'train_command', 'comparison_runs',
    'paired_interval', 'summarise', 'format_table', 'selection_gain', 'format_selection',
    'load_records',
    'export_records'
]


class Method(dict):
    """A row of the table: ``name``, ``config`` (under ``configs/rm``), ``kind``,
    ``setting`` (its hyper-parameters, said in the table), ``paper`` (``{'Table 1': err,
    'Table 6': err}``: CIFAR-10 PyramidNet-200 / ImageNet ResNet-50 top-1 error)."""

    def __init__(self, name, config, kind, setting, t1=None, t6=None):
        paper = {k: v for k, v in (('Table 1', t1), ('Table 6', t6)) if v is not None}
        super().__init__(name=name, config=f'configs/rm/resnet18-w16_1xb128_fashion-mnist{config}.py',
                         kind=kind, setting=setting, paper=paper)


METHODS: List[Method] = [
    Method('baseline', '', 'none', 'crop 28 pad 2, flip', 3.85, 23.68),
    Method('label-smooth', '_label-smooth', 'label', 'eps 0.1', 3.74),
    Method('cutout', '_cutout', 'data', '14x14 (16/32 of CIFAR), mean fill', 3.10, 22.93),
    Method('stochastic-depth', '_stochastic-depth', 'feature', 'rate 0.25, linear', 3.11, 22.46),
    Method('dropblock', '_dropblock', 'feature', 'drop 0.1, block 3, stages 3-4', 3.27, 21.87),
    Method('mixup', '_mixup', 'mix', 'alpha 1', 3.09, 22.58),
    Method('cutmix', '_cutmix', 'mix', 'alpha 1, every batch', 2.88, 21.40),
    Method('manifold-mixup', '_manifold-mixup', 'feature mix',
           'alpha 1, layer of {input, layer1, layer2}', 3.15, 22.50),
    Method('feature-cutmix', '_feature-cutmix', 'feature mix',
           'alpha 1, layer of {input, layer1, layer2}', None, 21.80),
    Method('moex', '_moex', 'feature mix', 'stem, lam 0.5, p 0.25', 3.44, 21.90),
    Method('cutmix-moex', '_cutmix-moex', 'feature mix', 'CutMix alpha 1 + MoEx lam 0.9 p 0.25',
           None, 20.90),
    Method('puzzlemix', '_puzzlemix', 'mix', 'authors\' CIFAR settings, blocks 2/4/7/14', None,
           21.24),
    Method('rm', '_rm', 'rm', 'alpha 0.5, omega 0.1, nearest', 2.35, 20.80),
    Method('rm-no-rs', '_rm-no-rs', 'rm ablation', 'history cut at the box, not resized'),
    Method('rm-no-cl', '_rm-no-cl', 'rm ablation', 'RS + HIS, omega 0 (Table 2: 14.81 vs 14.65)'),
    Method('rm-no-his', '_rm-no-his', 'rm ablation',
           'RS only: current batch, no CL (Table 2: 15.36)'),
    Method('rm-sharedfc', '_rm-sharedfc', 'rm ablation', 'H\' = main fc (Table 4a: 2.61)'),
]
METHOD_NAMES = [m['name'] for m in METHODS]
#: StyleCutMix is in Table 1 but cannot run here: its style network takes RGB images and needs
#: pretrained VGG / decoder weights that are not reachable offline.
NOT_RUN = {'stylecutmix': 'needs an RGB style network with pretrained VGG weights (offline: none)'}

#: Candidate regimes: train images per class (of the 5,500 a class of the train split), batch
#: size, epochs (one linear warm-up epoch, then cosine) and how often ``val`` is scored. The
#: candidates spend about the same number of training images (24k, 30k): what a run of ~4 min
#: on one core affords (the whole table, 51 runs, in about 2 h on 2 cores).
#: The ranking study (``docs/en/results/ranking.md``, preregistered) adds, in the order its
#: protocol tries them, the regimes where the dataset is not tiny (the first that meets the
#: selection rule on val is the study's) and scarce-20 with the images bicubic-upsampled to
#: 56 px (``image_size``; the crop's padding scales with it).
REGIMES: Dict[str, Dict] = {
    'scarce-50': dict(train_per_class=50, batch_size=64, max_epochs=48, val_interval=12),
    'scarce-20': dict(train_per_class=20, batch_size=32, max_epochs=150, val_interval=30),
    'scarce-100': dict(train_per_class=100, batch_size=64, max_epochs=100, val_interval=20),
    'scarce-500': dict(train_per_class=500, batch_size=128, max_epochs=30, val_interval=10),
    'scarce-20-56px': dict(train_per_class=20, batch_size=32, max_epochs=150, val_interval=30,
                           image_size=56, crop_padding=4),
}
DEFAULT_REGIME = 'scarce-20'
#: Tables 1 / 6 (docs/en/results/tables.md): their seeds and the regimes their selection tried;
#: the ranking study's further seeds and regimes share the folders and the run keys.
TABLE_SEEDS = (0, 1, 2)
TABLE_REGIMES = ('scarce-50', 'scarce-20')


def regime_options(regime: Dict) -> List[str]:
    """The ``--cfg-options`` of a regime, for any of the Fashion-MNIST configs: the subset,
    batch, epochs (the cosine's ``T_max`` follows), validation and best-on-val checkpoint, and
    no loader workers (each run gets one core: workers would compete with its thread)."""
    epochs, every = regime['max_epochs'], regime['val_interval']
    if epochs % every:
        raise ValueError(f'max_epochs {epochs} is not a multiple of val_interval {every}')
    opts = [
        f'train_dataloader.dataset.train_per_class={regime["train_per_class"]}',
        f'train_dataloader.batch_size={regime["batch_size"]}',
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={every}',
        f'param_scheduler.1.T_max={epochs - 1}',
        f'default_hooks.checkpoint.interval={every}', 'default_hooks.checkpoint.save_best=auto',
        'default_hooks.checkpoint.max_keep_ckpts=1', 'default_hooks.logger.interval=50',
    ]
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    for loader in loaders:
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    if regime.get('image_size') is not None:  # every Fashion-MNIST config crops first
        side = regime['image_size']
        opts += [f'{loader}.dataset.image_size={side}' for loader in loaders]
        opts += [f'train_dataloader.dataset.pipeline.0.crop_size={side}',
                 f'train_dataloader.dataset.pipeline.0.padding={regime["crop_padding"]}']
    return opts


def data_options(data_root: str) -> List[str]:
    """The ``--cfg-options`` that point every dataloader at ``data_root``."""
    return [f'{loader}.dataset.data_root={data_root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def train_command(config: str, work_dir: str, options: Sequence[str], seed: int,
                  data_root: str) -> List[str]:
    """The ``tools/train.py`` command of one comparison run."""
    return [sys.executable, osp.join(REPO_ROOT, 'tools/train.py'), config, '--work-dir',
            work_dir, '--cfg-options', *options, *data_options(data_root),
            f'randomness.seed={seed}']


def _compare_body(ctx, method: str, regime: str, config: str, options: Sequence[str], seed: int,
                  data_root: str) -> Dict:
    """One run: train, then score the last and the best-on-val checkpoints on ``test``."""
    work_dir = osp.join(ctx.folder, 'train')
    data = data_options(data_root)
    ctx.call(train_command(config, work_dir, options, seed, data_root))
    out = osp.join(ctx.folder, 'evaluation.json')
    ctx.call([sys.executable, '-m', 'mmrm.experiments.evaluate', work_dir, '--out', out,
              '--cfg-options', *data])
    with open(out) as f:
        return dict(method=method, seed=seed, regime=regime, **json.load(f))


def comparison_runs(root: str, regime: str, methods: Sequence[str], seeds: Sequence[int],
                    data_root: str, threads: Optional[int] = 1,
                    published: Optional[str] = None) -> List[Run]:
    """The keyed runs of (method, seed), seed-major (a stopped comparison leaves every method
    with as many seeds as the others, give or take one). ``published``: the folder of the
    committed records (``results/fashion_mnist``): a record there made with a run's key is that
    run, finished."""
    options = regime_options(REGIMES[regime])
    data = dict(fashion_mnist=files_digest(data_root, r'.*-ubyte(\.gz)?'))
    configs = {m['name']: osp.join(REPO_ROOT, m['config']) for m in METHODS}
    digests = {name: config_digest(configs[name]) for name in methods}
    runs = []
    for seed in seeds:
        for name in methods:
            key = RunKey(digests[name], options, data=data, seed=seed)
            body = functools.partial(_compare_body, method=name, regime=regime,
                                     config=configs[name], options=options, seed=seed,
                                     data_root=data_root)
            cost = 600. if name == 'puzzlemix' else 240.
            record = None if published is None else osp.join(published, regime,
                                                             f'{name}_seed{seed}.json')
            runs.append(Run(f'{regime} {name} seed {seed}', osp.join(root, regime),
                            f'{name}_seed{seed}', key, body, threads=threads, group=name,
                            cost=cost, published=record))
    return runs


# ------------------------------------------------------------------------------------------
# statistics and the table
# ------------------------------------------------------------------------------------------
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


def selection_gain(records: Sequence[Dict], seeds: Sequence[int] = (0, 1, 2)) -> Optional[Dict]:
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
