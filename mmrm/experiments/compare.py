"""The offline counterpart of the paper's Tables 1 and 6: every regularizer that applies to the
Fashion-MNIST demo network, trained in one regime, several seeds each, scored on the test split.

A regime is a fixed class-balanced subset of the training split, a batch size and a schedule
(:data:`REGIMES`); the regime the table uses was chosen on the validation split (DESIGN.md §6)
from the baseline and CutMix runs of each candidate. Each (regime, method, seed) is a run of
the run cache (:mod:`mmrm.experiments.run`): it trains with ``tools/train.py`` (validating on
``val`` every ``val_interval`` epochs, keeping the best-on-val checkpoint) and then
:mod:`mmrm.experiments.evaluate` scores the last and the best-on-val checkpoints on ``test``.

What the records say (the table, the regime selection, loading and exporting records) is
:mod:`mmrm.experiments.compare_report`.
"""
import functools
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from .keys import RunKey, config_digest, files_digest
from .records import REPO_ROOT
from .run import Run

__all__ = [
    'Method', 'METHODS', 'METHOD_NAMES', 'NOT_RUN', 'REGIMES', 'DEFAULT_REGIME', 'TABLE_SEEDS',
    'TABLE_REGIMES', 'regime_options', 'data_options', 'train_command', 'comparison_runs'
]


class Method(dict):
    """A row of the table: ``name``, ``config`` (under ``configs/rm``), ``kind``,
    ``setting`` (its hyper-parameters, said in the table), ``paper`` (``{'Table 1': err,
    'Table 6': err}``: CIFAR-10 PyramidNet-200 / ImageNet ResNet-50 top-1 error)."""

    def __init__(self, name, config, kind, setting, t1=None, t6=None):
        paper = {k: v for k, v in (('Table 1', t1), ('Table 6', t6)) if v is not None}
        config = f'configs/rm/resnet18-w16_1xb128_fashion-mnist{config}.py'
        super().__init__(name=name, config=config, kind=kind, setting=setting, paper=paper)


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
