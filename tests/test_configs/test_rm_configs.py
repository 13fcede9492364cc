"""Smoke and consistency tests of every config under ``configs/rm/`` (issue #4).

Each config (globbed, so a new file is covered without touching this test) is loaded with
``mmengine.Config``, shrunk through ``--cfg-options``-style overrides only (data root, batch
size 2, ``num_workers=0``, one epoch, 64-pixel crops for the 224 configs, no checkpoint, work
dir in tmp) and run through MMEngine's ``Runner``: one epoch of two training iterations (so RM's
second step pastes a real history) and one validation iteration (two epochs where a scheduler
would otherwise be empty), on tiny synthetic data written
in each dataset's REAL on-disk format:

* CIFAR-10 / CIFAR-100: the python pickles (``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``, ``batches.meta``; ``cifar-100-python/train``, ``test``, ``meta``). MMPretrain
  checks the md5 of every pickle against the real release and has no argument to skip it; a
  synthetic file cannot match, so the md5 entries of the two classes are set to ``None`` (the
  value MMPretrain itself uses for "no checksum") for the duration of this module only;
* ImageNet: ``train/``, ``val/`` and ``meta/{train,val}.txt``, read by mmpretrain's
  ``ImageNet`` through its annotation files;
* Fashion-MNIST: the four uncompressed IDX files.

The model, the data pipeline, the optimiser and the parameter schedulers are the configs' own.
Besides, the ``--cfg-options`` keys documented for the alpha / omega sweeps are checked to reach
the built modules, and ``tools/dist_train.sh`` trains the mandated ImageNet RM config with two
CPU processes.
"""
import argparse
import copy
import functools
import gc
import math
import os
import os.path as osp
import pickle
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.utils import (REPO_ROOT, find_free_port, make_image_folder, newcomer_env,
                         write_fashion_mnist)

CONFIG_DIR = REPO_ROOT / 'configs' / 'rm'
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*.py'))
README = CONFIG_DIR / 'README.md'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: classifiers that mix labels inside the model (issue #12)
FEATURE_MIXING = ('FeatureMixClassifier', 'PuzzleMixClassifier')
#: crop side the 224-pixel ImageNet pipelines are shrunk to
SMOKE_SIZE = 64
#: crop side the 32-pixel CIFAR training pipelines are shrunk to (a quarter of the pixels:
#: PyramidNet-200's smoke run ~2x faster; the test images stay 32)
CIFAR_SMOKE_SIZE = 16
CIFAR = ('CIFAR10', 'CIFAR100')
#: ``{backbone}_{gpus}xb{batch}_{dataset}[_{variant}].py``
NAME_RE = re.compile(r'^(?P<backbone>[a-z0-9-]+)_(?P<gpus>\d+)xb(?P<batch>\d+)_'
                     r'(?P<dataset>[a-z0-9-]+)(?:_(?P<variant>[a-z0-9-]+))?\.py$')


def test_configs_found():
    assert len(CONFIGS) >= 40, CONFIGS
    assert 'resnet50_8xb32_in1k_rm.py' in CONFIGS
    # the comparators of Tables 1 and 6 (issue #12)
    table1 = [f'pyramidnet200-a240_2xb32_cifar10_{v}.py'
              for v in ('dropblock', 'manifold-mixup', 'moex', 'stylecutmix')]
    table6 = [f'resnet50_8xb32_in1k_{v}.py'
              for v in ('cutout', 'stochastic-depth', 'manifold-mixup', 'dropblock',
                        'feature-cutmix', 'puzzlemix', 'moex', 'cutmix-moex')]
    assert not set(table1 + table6) - set(CONFIGS), sorted(set(table1 + table6) - set(CONFIGS))


# --------------------------------------------------------------------------------------------
# synthetic datasets in their real on-disk formats
# --------------------------------------------------------------------------------------------
def _cifar_entry(rng, n, num_classes, label_key):
    data = rng.randint(0, 256, size=(n, 3 * 32 * 32)).astype(np.uint8)
    labels = [int(i % num_classes) for i in range(n)]
    entry = {'data': data, label_key: labels, 'filenames': [f'img_{i}.png' for i in range(n)]}
    if label_key == 'fine_labels':
        entry['coarse_labels'] = [lab % 20 for lab in labels]
    return entry


def write_cifar10(root, per_batch=(1, 1, 1, 1, 0), n_test=2, seed=0):
    """``root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``, 32x32 RGB rows of
    3072 uint8 (R plane, G plane, B plane) as the real pickles; ``per_batch[i]`` train images in
    ``data_batch_{i+1}``."""
    rng = np.random.RandomState(seed)
    folder = Path(root) / 'cifar-10-batches-py'
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(per_batch, 1):
        with open(folder / f'data_batch_{i}', 'wb') as f:
            pickle.dump(_cifar_entry(rng, n, 10, 'labels'), f)
    with open(folder / 'test_batch', 'wb') as f:
        pickle.dump(_cifar_entry(rng, n_test, 10, 'labels'), f)
    with open(folder / 'batches.meta', 'wb') as f:
        pickle.dump({'label_names': [f'class_{k}' for k in range(10)],
                     'num_cases_per_batch': max(per_batch), 'num_vis': 3072}, f)
    return str(root)


def write_cifar100(root, n_train=4, n_test=2, seed=0):
    """``root/cifar-100-python/{train,test,meta}`` with ``fine_labels``/``coarse_labels``."""
    rng = np.random.RandomState(seed)
    folder = Path(root) / 'cifar-100-python'
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / 'train', 'wb') as f:
        pickle.dump(_cifar_entry(rng, n_train, 100, 'fine_labels'), f)
    with open(folder / 'test', 'wb') as f:
        pickle.dump(_cifar_entry(rng, n_test, 100, 'fine_labels'), f)
    with open(folder / 'meta', 'wb') as f:
        pickle.dump({'fine_label_names': [f'class_{k}' for k in range(100)],
                     'coarse_label_names': [f'super_{k}' for k in range(20)]}, f)
    return str(root)


def write_imagenet(root, num_classes=2, train_per_class=4, val_per_class=1, size=80):
    """``root/{train,val}/class_k/img_i.png`` plus ``root/meta/{train,val}.txt`` ("path label"
    per line, paths relative to the split folder), the layout mmpretrain's ``ImageNet`` reads
    with ``split='train'|'val'``."""
    root = Path(root)
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        make_image_folder(root / split, num_classes=num_classes, images_per_class=per_class,
                          size=size, seed=len(split))
        lines = [f'class_{k}/img_{i:03d}.png {k}' for k in range(num_classes)
                 for i in range(per_class)]
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return str(root)


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('config_data')
    return {
        'CIFAR10': write_cifar10(base / 'cifar10'),
        'CIFAR100': write_cifar100(base / 'cifar100'),
        'ImageNet': write_imagenet(base / 'imagenet', train_per_class=2),
        # 2 training images a class: the val carve (FashionMNISTSplit) keeps one of each
        'FashionMNISTSplit': write_fashion_mnist(base / 'fashion_mnist', n_train=20),
    }


@pytest.fixture(scope='module', autouse=True)
def _no_cifar_md5():
    """Synthetic pickles cannot match the md5 of the real CIFAR release; MMPretrain treats a
    ``None`` md5 as "no checksum". Patched on the classes, restored after this module."""
    from mmpretrain.datasets import CIFAR10, CIFAR100
    with pytest.MonkeyPatch.context() as mp:
        for cls in (CIFAR10, CIFAR100):
            mp.setattr(cls, 'train_list', [[name, None] for name, _ in cls.train_list])
            mp.setattr(cls, 'test_list', [[name, None] for name, _ in cls.test_list])
            mp.setattr(cls, 'meta', dict(cls.meta, md5=None))
        yield


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _load_config(name):
    from mmengine.config import Config
    return Config.fromfile(str(CONFIG_DIR / name))


def load_config(name):
    """A fresh copy of ``configs/rm/<name>`` (parsed once per session)."""
    return copy.deepcopy(_load_config(name))


def parse_cfg_options(*options):
    """``--cfg-options k=v ...`` exactly as tools/train.py parses them (MMEngine's DictAction)."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def smoke_options(cfg, data_root, work_dir, batch_size=2):
    """The cfg-options (dotted keys, list indices for pipelines) that shrink a config for a
    CPU smoke run; nothing else of the config changes."""
    # Epoch-based warm-ups are cut to one epoch (a scheduler that starts after the warm-up
    # starts at epoch 1), so a run is one epoch, or two where a scheduler without an explicit
    # ``end`` starts at epoch 1 (MMEngine ends those at max_epochs, which must lie beyond
    # their ``begin``).
    schedulers = cfg.get('param_scheduler') or []
    listed = not isinstance(schedulers, dict)
    schedulers = schedulers if listed else [schedulers]
    opts = {}
    for i, s in enumerate(schedulers):
        if not s.get('by_epoch', True):
            continue
        key = f'param_scheduler.{i}' if listed else 'param_scheduler'
        if s.get('begin', 0) > 1:
            opts[f'{key}.begin'] = 1
        if s.get('end') is not None and s['end'] > 1 and s.get('begin', 0) == 0:
            opts[f'{key}.end'] = 1
    begins = [opts.get(f'param_scheduler.{i}.begin' if listed else 'param_scheduler.begin',
                       s.get('begin', 0)) for i, s in enumerate(schedulers) if 'end' not in s]
    epochs = 1 + max(begins, default=0)
    opts.update({
        'work_dir': str(work_dir),
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': 1,
        'default_hooks.checkpoint': None,
        'default_hooks.logger.interval': 1,
        'randomness.seed': 0,
    })
    for loader in LOADERS:
        if cfg.get(loader) is None:
            continue
        opts[f'{loader}.batch_size'] = batch_size
        opts[f'{loader}.num_workers'] = 0
        opts[f'{loader}.persistent_workers'] = False
        opts[f'{loader}.dataset.data_root'] = str(data_root)
        size = smoke_size(cfg)
        for i, t in enumerate(cfg[loader].dataset.get('pipeline', [])):
            if t['type'] in ('RandomResizedCrop', 'ResizeEdge', 'EfficientNetRandomCrop'):
                opts[f'{loader}.dataset.pipeline.{i}.scale'] = size
            elif t['type'] in ('CenterCrop', 'EfficientNetCenterCrop'):
                opts[f'{loader}.dataset.pipeline.{i}.crop_size'] = size
            elif t['type'] == 'RandomCrop' and cfg[loader].dataset.type in CIFAR:
                # CIFAR's crop_size=32, padding=4
                opts[f'{loader}.dataset.pipeline.{i}.crop_size'] = CIFAR_SMOKE_SIZE
                opts[f'{loader}.dataset.pipeline.{i}.padding'] = CIFAR_SMOKE_SIZE // 8
    return opts


def smoke_size(cfg) -> int:
    """The crop side of a smoke run: :data:`SMOKE_SIZE`, except for Swin, whose 7x7 windows
    need the last stage's 7x7 map of a 224 input (smaller inputs are refused unless the model
    pads, which would change it)."""
    backbone = cfg.model.get('backbone') or {}
    return 224 if backbone.get('type') == 'SwinTransformer' else SMOKE_SIZE


def style_network_files(cfg, folder):
    """StyleCutMix's pretrained AdaIN weights cannot be fetched offline: write random ones (and
    a random class style-distance matrix) in the files' real formats, point the config at them
    (so the loading code runs) and shrink the style transfer to 32 pixels, as the crops above.
    ``{}`` for configs without StyleCutMix."""
    augments = (cfg.model.get('train_cfg') or {}).get('augments')
    if not augments or augments.get('type') != 'StyleCutMix':
        return {}
    import torch

    from mmrm.models.batch_augments.adain import AdaINStyleTransfer
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = AdaINStyleTransfer(None, None, random_init=True)
    torch.save(net.encoder.state_dict(), folder / 'vgg_normalised.pth')
    torch.save(net.decoder.state_dict(), folder / 'decoder.pth.tar')
    k = cfg.model.head.num_classes
    torch.save(torch.rand(k, k), folder / 'distance.pt')
    key = 'model.train_cfg.augments'
    return {f'{key}.encoder_checkpoint': str(folder / 'vgg_normalised.pth'),
            f'{key}.decoder_checkpoint': str(folder / 'decoder.pth.tar'),
            f'{key}.style_distance': str(folder / 'distance.pt'),
            f'{key}.style_size': 32}


def _recorder(observe=None):
    from mmengine.hooks import Hook

    class Recorder(Hook):
        priority = 'VERY_LOW'

        def __init__(self):
            self.losses, self.metrics, self.observed = [], None, []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.losses.append({k: float(v.detach()) if hasattr(v, "detach") else float(v)
                                for k, v in (outputs or {}).items()})
            if observe is not None:
                self.observed.append(observe())

        def after_val_epoch(self, runner, metrics=None):
            self.metrics = dict(metrics or {})

    return Recorder()


# --------------------------------------------------------------------------------------------
# the draws of a smoke run, chosen to take every branch of the config's randomness
# --------------------------------------------------------------------------------------------
class Forced:
    """A draw function that returns ``values`` in turn, cyclically (a callable value is called
    with the draw's arguments); :meth:`used_up` tells whether every chosen draw was taken."""

    def __init__(self, values):
        self.values, self.taken = list(values), 0

    def __call__(self, *args, **kwargs):
        value = self.values[self.taken % len(self.values)]
        self.taken += 1
        return value(*args, **kwargs) if callable(value) else value

    def used_up(self):
        return self.taken >= len(self.values)


class ForcedChoice:
    """RandomBatchAugment with its choice of augment (index, None = plain batch) forced."""

    def __init__(self, batch_augments, picks):
        self.augments, self.pick = batch_augments.augments, Forced(picks)

    def __call__(self, inputs, scores):
        aug = self.augments[self.pick()]
        return aug(inputs, scores) if aug is not None else (inputs, scores.float())


def _cutmix_box(kind):
    """mmpretrain CutMix.cutmix_bbox_and_lam stand-in: ``((y1, y2, x1, x2), lam)``."""
    def box(shape, lam=None):
        h, w = shape
        return {'empty': ((0, 0, 0, 0), 1.), 'full': ((0, h, 0, w), 0.),
                'partial': ((h // 4, h, 0, w // 2), 1 - (h - h // 4) * (w // 2) / (h * w))}[kind]
    return box


def branch_plan(cfg):
    """``(steps, install)`` for a config: how many training steps cover every branch of its
    randomness, and ``install(model) -> (observe, check)`` that forces the draws of those steps
    on the built model. ``observe()`` runs after every step; ``check(observed)`` asserts that
    each forced branch was taken. ``(2, None)`` where the config draws no branch."""
    import torch
    model_cfg = cfg.model
    aug_cfg = (model_cfg.get('train_cfg') or {}).get('augments')
    aug_type = aug_cfg.get('type') if isinstance(aug_cfg, dict) else None

    if aug_type == 'RecursiveMixBatchAugment':
        def install(model):
            pre = model.data_preprocessor
            aug = pre.rm_augment if model_cfg.type == 'RMClassifier' else \
                pre.batch_augments.augments[0]
            # an empty and a full box, both with a history to paste (seeded before step 1,
            # as a previous step of the epoch would have left it); without history
            # (use_history=False) the partner is the shuffled batch
            aug.sample_box = Forced([lambda h, w: (w // 2, 0, w // 2, h),
                                     lambda h, w: (0, 0, w, h)])
            if aug.use_history:
                size, channels = _smoke_input(cfg)
                k = model_cfg.head.num_classes
                aug.history_inputs = torch.randn(2, channels, size, size)
                aug.history_scores = torch.softmax(torch.randn(2, k), 1)
                aug._history_epoch = 0  # the hub's epoch of step 1: no reset
            return (lambda: aug.last_lam,
                    lambda seen: aug.sample_box.used_up() and seen[:2] == [0., 1.])
        return 2, install

    if aug_type == 'CutMix':
        probs = model_cfg.train_cfg.get('probs')

        def install(model):
            pre = model.data_preprocessor
            cutmix = pre.batch_augments.augments[0]
            cutmix.cutmix_bbox_and_lam = Forced([_cutmix_box('empty'), _cutmix_box('full')] +
                                                [_cutmix_box('partial')] * bool(probs))
            if probs is not None:  # applied or not: the plain batch at step 3
                pre.batch_augments = ForcedChoice(pre.batch_augments, [0, 0, 1, 0])
            checks = [cutmix.cutmix_bbox_and_lam] + ([pre.batch_augments.pick] if probs else [])
            return None, lambda seen: all(f.used_up() for f in checks)
        return (4 if probs else 2), install

    if aug_type == 'StyleCutMix':
        def install(model):
            aug = model.data_preprocessor.batch_augments.augments[0]
            aug.applies = Forced([True, True, False, True])
            full = lambda size: (0, size, 0, size)  # noqa: E731
            aug.sample_box = Forced([lambda size: (0, 0, 0, 0), full,
                                     lambda size: (0, size // 2, size // 4, size)])
            return (lambda: None if aug.last_lam is None else float(aug.last_lam.mean()),
                    lambda seen: aug.applies.used_up() and aug.sample_box.used_up()
                    and seen[2] is None and all(v is not None for v in seen[:2] + seen[3:4]))
        return 4, install

    if model_cfg.type == 'FeatureMixClassifier':
        ops = model_cfg.feature_mix
        ops = list(ops) if isinstance(ops, (list, tuple)) else [ops]
        steps = max([len(op.get('layers', ('input', ))) for op in ops] +
                    [2 if op.get('prob', 1.) < 1 or op.type == 'FeatureCutMix' else 1
                     for op in ops])
        steps = 2 if steps <= 2 else 4

        def install(model):
            mixes = model.feature_mixes
            # layer of op j at step i: every candidate, in turn
            plans = [[op.layers[i % len(op.layers)] for op in mixes] for i in range(steps)]
            model.sample_plan = Forced([
                (lambda n, device, layers=layers: (torch.randperm(n, device=device),
                                                   list(zip(mixes, layers))))
                for layers in plans])
            forced = [model.sample_plan]
            for op in mixes:
                if type(op).__name__ == 'FeatureCutMix':
                    kinds = ['empty', 'full', 'partial', 'partial'][:steps]

                    def box(kind):
                        return lambda hw: _cutmix_box(kind)(hw)
                    op.sample_box = Forced([box(k) for k in kinds])
                    forced.append(op.sample_box)
                if op.prob < 1:
                    op.applies = Forced([True, False, True, False][:steps])
                    forced.append(op.applies)
            # what each step did: the layer of every op and its label weight (None: not
            # applied; a FeatureCutMix's empty box keeps the own label, 1, a full one takes the
            # partner's, 0)
            expected_lams = []
            for i in range(steps):
                row = []
                for op in mixes:
                    applied = op.prob >= 1 or i % 2 == 0
                    kind = ['empty', 'full', 'partial', 'partial'][i]
                    row.append(None if not applied else
                               {'empty': 1., 'full': 0.}.get(kind, 'any')
                               if type(op).__name__ == 'FeatureCutMix' else 'any')
                expected_lams.append(row)

            def check(seen):
                layers = [[layer for layer, _ in step] for step in seen[:steps]]
                lams = [[lam for _, lam in step] for step in seen[:steps]]
                return (all(f.used_up() for f in forced) and layers == plans and all(
                    (e is None and lam is None) or (e == 'any' and lam is not None) or lam == e
                    for row_e, row in zip(expected_lams, lams) for e, lam in zip(row_e, row)))
            return (lambda: [(layer, lam) for _, layer, lam in model.last_mixes], check)
        return steps, install

    if model_cfg.type == 'PuzzleMixClassifier':
        blocks = tuple(model_cfg.puzzle_mix.block_nums)

        def install(model):
            model.puzzle_mix.sample = Forced([(n, 0.5) for n in blocks])
            return (lambda: model.puzzle_mix.last_mask.shape[-1],
                    lambda seen: model.puzzle_mix.sample.used_up()
                    and seen[:len(blocks)] == list(blocks))
        return len(blocks), install
    return 2, None


def _smoke_input(cfg):
    """(side, channels) of the smoke run's training batches."""
    dataset = cfg.train_dataloader.dataset.type
    side = CIFAR_SMOKE_SIZE if dataset in CIFAR else \
        28 if dataset == 'FashionMNISTSplit' else smoke_size(cfg)
    return side, int((cfg.model.get('backbone') or {}).get('in_channels', 3))


# --------------------------------------------------------------------------------------------
# static checks (no model built)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', CONFIGS)
def test_config_name_and_batch(name):
    """The name's GPUs x batch is the config's batch, and auto_scale_lr is set to that total
    (so ``--auto-scale-lr`` keeps the config's lr on the named GPU count)."""
    m = NAME_RE.match(name)
    assert m, f'{name} does not follow {{backbone}}_{{gpus}}xb{{batch}}_{{dataset}}_{{variant}}'
    cfg = load_config(name)
    gpus, batch = int(m['gpus']), int(m['batch'])
    assert cfg.train_dataloader.batch_size == batch, name
    assert cfg.get('auto_scale_lr') and cfg.auto_scale_lr.base_batch_size == gpus * batch, name
    assert cfg.custom_imports.imports == ['mmrm'], name


@pytest.mark.parametrize('name', CONFIGS)
def test_mixed_labels_use_soft_ce(name):
    """Every config that mixes labels trains with soft-label CE."""
    cfg = load_config(name)
    model = cfg.model
    augments = (model.get('train_cfg') or {}).get('augments')
    if augments or model.type in ('RMClassifier', ) + FEATURE_MIXING:
        loss = model.head.loss
        # mmpretrain's LabelSmoothLoss (the model zoo's transformer recipes) smooths soft
        # targets as they come and takes them with soft CE
        assert (loss.type == 'CrossEntropyLoss' and loss.get('use_soft')) or \
            loss.type == 'LabelSmoothLoss', (name, loss)
    if model.type == 'RMClassifier':
        assert model.roi_head.type == 'RoIConsistencyHead'
        assert augments.type == 'RecursiveMixBatchAugment'


def test_readme_lists_every_config():
    text = README.read_text()
    missing = [n for n in CONFIGS if n not in text]
    assert not missing, f'configs/rm/README.md does not mention {missing}'


def test_paper_hyper_parameters():
    """The RM settings the paper states, as the configs resolve them."""
    c100 = load_config('resnet18_2xb64_cifar100_rm.py')
    assert c100.model.roi_head.omega == 0.1 and c100.model.train_cfg.augments.alpha == 0.5
    assert c100.optim_wrapper.optimizer.lr == 0.1 and c100.train_cfg.max_epochs == 200
    assert c100.optim_wrapper.optimizer.weight_decay == 5e-4
    c10 = load_config('pyramidnet200-a240_2xb32_cifar10_rm.py')
    opt = c10.optim_wrapper.optimizer
    assert (opt.lr, opt.weight_decay, opt.nesterov) == (0.25, 1e-4, True)
    assert c10.train_cfg.max_epochs == 300
    assert [s.get('milestones') for s in c10.param_scheduler] == [None, [150, 225]]
    in1k = load_config('resnet50_8xb32_in1k_rm.py')
    assert in1k.model.roi_head.omega == 0.5 and in1k.train_cfg.max_epochs == 300
    # the paper's 512 / 0.2, scaled linearly to the config's 8 x 32 = 256
    assert in1k.optim_wrapper.optimizer.lr * 512 / 256 == pytest.approx(0.2)
    types = [t['type'] for t in in1k.train_dataloader.dataset.pipeline]
    assert 'ColorJitter' in types and 'Lighting' in types
    abl = load_config('pyramidnet164-a270_2xb64_cifar100_rm-rs.py').model
    assert abl.type == 'ImageClassifier' and abl.train_cfg.augments.use_history is False
    his = load_config('pyramidnet164-a270_2xb64_cifar100_rm-rs-his.py').model
    assert his.type == 'ImageClassifier' and his.train_cfg.augments.use_history is True


def test_comparator_hyper_parameters():
    """Tables 1 / 6 comparators carry their own papers' settings (issue #12)."""
    c = lambda name: load_config(name).model  # noqa: E731
    db = c('resnet50_8xb32_in1k_dropblock.py').backbone
    assert (db.dropblock.drop_prob, db.dropblock.block_size, db.stages) == (
        0.1, 7, ('layer3', 'layer4'))
    db = c('pyramidnet200-a240_2xb32_cifar10_dropblock.py').backbone
    assert (db.dropblock.drop_prob, db.dropblock.block_size) == (0.1, 4)
    moex = c('resnet50_8xb32_in1k_moex.py').feature_mix
    assert (moex.lam, moex.prob, moex.layers) == (0.9, 1.0, ('backbone.maxpool', ))
    cutmix, moex = c('resnet50_8xb32_in1k_cutmix-moex.py').feature_mix
    assert (cutmix.type, cutmix.alpha, cutmix.layers) == ('FeatureCutMix', 1.0, ('input', ))
    assert (moex.lam, moex.prob) == (0.9, 0.25)
    moex = c('pyramidnet200-a240_2xb32_cifar10_moex.py').feature_mix
    assert (moex.lam, moex.prob, moex.layers) == (0.5, 0.25, ('backbone.bn1', ))
    for name in ('resnet50_8xb32_in1k_manifold-mixup.py',
                 'pyramidnet200-a240_2xb32_cifar10_manifold-mixup.py',
                 'resnet50_8xb32_in1k_feature-cutmix.py'):
        mix = c(name).feature_mix
        assert mix.alpha == 1.0 and mix.layers == ('input', 'backbone.layer1', 'backbone.layer2')
    pm = c('resnet50_8xb32_in1k_puzzlemix.py').puzzle_mix
    assert (pm.block_nums, pm.n_labels, pm.neigh_size, pm.beta, pm.gamma, pm.eta, pm.t_eps,
            pm.transport) == ((2, 4, 8, 16), 3, 2, 1.2, 0.5, 0.2, 0.8, True)
    sc = c('pyramidnet200-a240_2xb32_cifar10_stylecutmix.py').train_cfg.augments
    assert (sc.gamma, sc.delta, sc.r, sc.prob, sc.style_size) == ('auto', 1.0, 0.7, 0.5, 224)
    assert c('resnet50_8xb32_in1k_stochastic-depth.py').backbone.drop_path_rate == 0.25
    cutout = [t for t in load_config('resnet50_8xb32_in1k_cutout.py').train_dataloader.dataset
              .pipeline if t['type'] == 'ClippedCutout']
    assert len(cutout) == 1 and (cutout[0]['shape'], cutout[0]['prob']) == (112, 1.0)


# --------------------------------------------------------------------------------------------
# the sweep keys documented in configs/rm/README.md reach the built modules
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['resnet18_2xb64_cifar100_rm.py', 'resnet50_8xb32_in1k_rm.py'])
def test_sweep_cfg_options_reach_model(name):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mmrm  # noqa: F401
    cfg = load_config(name)
    cfg.merge_from_dict(parse_cfg_options(
        'model.train_cfg.augments.alpha=0.3', 'model.roi_head.omega=0.05',
        'model.train_cfg.augments.interpolation=bilinear', 'model.roi_head.share_fc=True'))
    init_default_scope('mmpretrain')
    model_cfg = cfg.model.copy()
    # what Runner.build_model does with the top-level data_preprocessor
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model = MODELS.build(model_cfg)
    aug = model.data_preprocessor.rm_augment
    assert aug.alpha == 0.3 and aug.interpolation == 'bilinear'
    assert model.roi_head.omega == 0.05 and model.roi_head.share_fc is True
    # and the defaults the config files set
    model = MODELS.build(dict(load_config(name).model,
                              data_preprocessor=cfg.get('data_preprocessor')))
    aug = model.data_preprocessor.rm_augment
    assert aug.alpha == 0.5 and aug.interpolation == 'nearest'
    assert model.roi_head.share_fc is False
    assert model.roi_head.omega == (0.5 if 'in1k' in name else 0.1)


# --------------------------------------------------------------------------------------------
# one training epoch (2 iterations) + one validation iteration per config
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_validates(name, data_roots, tmp_path):
    from mmengine.runner import Runner

    cfg = load_config(name)
    dataset_type = cfg.train_dataloader.dataset.type
    assert dataset_type in data_roots, f'{name}: no synthetic data for {dataset_type}'
    cfg.merge_from_dict(smoke_options(cfg, data_roots[dataset_type], tmp_path / 'work'))
    cfg.merge_from_dict(style_network_files(cfg, tmp_path / 'stylemix'))
    # the draws of the run are chosen to take every branch of the config's randomness (every
    # block count, every candidate layer, an empty and a full box, applied or not), with as
    # many steps as that takes (the 4-image datasets repeated where it takes 4)
    steps, install = branch_plan(cfg)
    if steps > 2:
        cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=steps // 2,
                                            dataset=cfg.train_dataloader.dataset)

    runner = Runner.from_cfg(cfg)
    observe, check = install(runner.model) if install else (None, None)
    rec = _recorder(observe)
    runner.register_hook(rec)
    try:
        runner.train()
        model = runner.model
        # every config runs at least two steps (RM pastes a history from the second on)
        assert len(rec.losses) == runner.train_loop.max_iters >= max(steps, 2), rec.losses
        if check is not None:
            assert check(rec.observed), (name, rec.observed)
        for step in rec.losses:
            assert math.isfinite(step['loss']), (name, rec.losses)
        if cfg.model.type == 'RMClassifier':
            assert all('loss_rm' in step for step in rec.losses), rec.losses
            assert model.data_preprocessor.rm_augment.use_history
        if cfg.model.type == 'FeatureMixClassifier':
            # every op drew one of its configured layers at the last step
            ops = cfg.model.feature_mix
            ops = ops if isinstance(ops, (list, tuple)) else [ops]
            assert [name for name, _, _ in model.last_mixes] == [op.type for op in ops]
            assert all(layer in op.layers for op, (_, layer, _) in zip(ops, model.last_mixes))
        if cfg.model.type == 'PuzzleMixClassifier':
            assert model.puzzle_mix.last_lam is not None  # prob 1: the last batch was mixed
        if cfg.model.backbone.type == 'DropBlockBackbone':
            from mmrm.models import DropBlock
            stages = cfg.model.backbone.stages
            assert any(isinstance(m, DropBlock) for s in stages
                       for m in getattr(model.backbone, s).modules())
        assert rec.metrics is not None and 'accuracy/top1' in rec.metrics, rec.metrics
        assert 0 <= rec.metrics['accuracy/top1'] <= 100
    finally:
        del runner
        gc.collect()


# --------------------------------------------------------------------------------------------
# tools/dist_train.sh on CPU, 2 processes
# --------------------------------------------------------------------------------------------
def test_dist_train_sh_resnet50_rm(tmp_path):
    """The README's own command, ``tools/dist_train.sh configs/rm/resnet50_8xb32_in1k_rm.py N``,
    from a shell as ``make install`` leaves it: no venv on PATH, no PYTHON set."""
    script = REPO_ROOT / 'tools' / 'dist_train.sh'
    cfg_name = 'resnet50_8xb32_in1k_rm.py'
    root = write_imagenet(tmp_path / 'imagenet', train_per_class=4, val_per_class=1)
    work_dir = tmp_path / 'work'
    opts = smoke_options(load_config(cfg_name), root, work_dir)
    # keep the checkpoint (the file downstream configs point at), without the extra best copy
    opts.pop('default_hooks.checkpoint')
    opts.update({'default_hooks.checkpoint.interval': 1,
                 'default_hooks.checkpoint.save_best': None})
    cli = []
    for k, v in opts.items():
        if k == 'work_dir':
            continue
        cli.append(f'{k}={v}')
    cmd = ['bash', str(script), f'configs/rm/{cfg_name}', '2', '--work-dir', str(work_dir),
           '--cfg-options', *cli]
    env = newcomer_env(PORT=find_free_port())
    proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True,
                          timeout=600)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    ckpt = work_dir / 'epoch_1.pth'
    assert ckpt.is_file(), (sorted(os.listdir(work_dir)), log)

    import torch
    state = torch.load(str(ckpt), map_location='cpu', weights_only=False)['state_dict']
    assert any(k.startswith('roi_head.') for k in state)
    assert 'backbone.conv1.weight' in state and 'head.fc.weight' in state
    # both ranks trained on their half: 8 images / 2 ranks / batch 2 = 2 iterations
    assert 'Epoch(train)' in log and '[1][2/2]' in log, log
    assert osp.isfile(work_dir / 'last_checkpoint')


# --------------------------------------------------------------------------------------------
# tools/sweep.py (no training: the commands it would run and its summary of logged runs)
# --------------------------------------------------------------------------------------------
def test_sweep_tool_commands_and_summary(tmp_path):
    import json
    import sys
    cfg = 'configs/rm/resnet18_2xb64_cifar100_rm.py'
    base = [sys.executable, str(REPO_ROOT / 'tools' / 'sweep.py'), cfg, '--key',
            'model.train_cfg.augments.alpha', '--values', '0.3', '0.5', '--seeds', '0', '1',
            '--work-root', str(tmp_path)]
    out = subprocess.run(base + ['--gpus', '2', '--dry-run', '--amp'], cwd=str(REPO_ROOT),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == 4
    assert 'dist_train.sh' in out[0] and f' {cfg} 2 ' in out[0]
    assert '--amp' in out[0]
    assert out[0].endswith('--cfg-options model.train_cfg.augments.alpha=0.3 randomness.seed=0')
    wd = tmp_path / 'resnet18_2xb64_cifar100_rm' / 'alpha-0.3_seed-0'
    assert re.search(f'--work-dir {wd}-[0-9a-f]{{8}} ', out[0])  # the folder names its key
    work_dirs = [line.split('--work-dir ')[1].split()[0] for line in out]
    assert len(set(work_dirs)) == 4
    # the summary: best epoch of each seed, mean and std over seeds
    for seed, accs in ((0, [70.0, 80.0, 79.0]), (1, [82.0])):
        vis = Path(work_dirs[seed]) / 'T' / 'vis_data'
        vis.mkdir(parents=True)
        lines = [json.dumps({'lr': 0.1, 'loss': 1.0, 'step': 1})]
        lines += [json.dumps({'accuracy/top1': a, 'step': i + 1}) for i, a in enumerate(accs)]
        (vis / 'scalars.json').write_text('\n'.join(lines) + '\n')
    # the summary of the same runs (same key: same --gpus and train.py arguments)
    out = subprocess.run(base + ['--gpus', '2', '--amp', '--summary'], cwd=str(REPO_ROOT),
                         capture_output=True, text=True, check=True).stdout
    row = [line for line in out.splitlines() if line.strip().startswith('0.3')][0]
    assert '19.00' in row and '1.41' in row and '|    2 |' in row, out
    assert [line for line in out.splitlines() if line.strip().startswith('0.5')][0].count('-') >= 2
