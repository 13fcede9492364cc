"""Shared helpers for the mmrm tests: tiny synthetic data and tiny configs.

Everything here is CPU-only, seeded and small enough for a test to train a few iterations in
seconds. Typical use::

    from tests.utils import make_image_folder, tiny_cls_config, write_config

    root = make_image_folder(tmp_path / 'data', num_classes=3, images_per_class=4)
    cfg = tiny_cls_config(root, work_dir=tmp_path / 'work', max_iters=4)
    cfg['model']['train_cfg'] = dict(augments=dict(type='RecursiveMixBatchAugment'))
    path = write_config(cfg, tmp_path / 'cfg.py')      # for tools/train.py
    runner = Runner.from_cfg(Config(cfg))                  # or in-process

(``tests`` is importable as a package when pytest runs from the repository root, see
``tests/conftest.py``; the ``tiny_image_folder`` fixture there wraps :func:`make_image_folder`.)
"""
import copy
import os
import os.path as osp
import socket
import sys
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

#: repository root (tools/, configs/, mmrm/ live here)
REPO_ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    'REPO_ROOT', 'make_image_folder', 'tiny_cls_config', 'write_config',
    'find_free_port', 'tool_env', 'newcomer_env', 'classification_only_env',
    'CLASSIFICATION_ONLY_BLOCKS', 'write_fashion_mnist', 'load_tool', 'tiny_rm_config',
    'make_tiny_rm_setup', 'TINY_RM_NUM_CLASSES', 'TINY_RM_LAST_CHANNELS'
]


def make_image_folder(root: Union[str, Path],
                      num_classes: int = 2,
                      images_per_class: int = 4,
                      size: Union[int, Sequence[int]] = 16,
                      channels: int = 3,
                      class_names: Optional[Sequence[str]] = None,
                      seed: int = 0) -> str:
    """Write an ImageNet-style folder dataset of PNG images and return its root.

    Layout (what mmpretrain's ``CustomDataset`` / ``ImageNet`` scan with ``ann_file=''``)::

        root/class_0/img_000.png, root/class_0/img_001.png, ...
        root/class_1/...

    Images are ``uint8`` noise plus a class-dependent brightness offset (class ``k`` of ``n`` is
    brighter by ``~200 * k / n``), so a model can actually learn the classes. Deterministic for a
    given ``seed``; re-running on an existing root overwrites the same files.

    Args:
        root: output directory (created).
        num_classes: number of class sub-folders.
        images_per_class: PNG images per class.
        size: ``H`` (square) or ``(H, W)``.
        channels: 3 (RGB PNG) or 1 (greyscale PNG).
        class_names: folder names; default ``class_0 ... class_{n-1}``.
        seed: RNG seed.

    Returns:
        str: ``root`` as a string.
    """
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if class_names is None:
        class_names = [f'class_{k}' for k in range(num_classes)]
    assert len(class_names) == num_classes, 'one name per class'
    assert channels in (1, 3), 'channels must be 1 or 3'
    rng = np.random.RandomState(seed)
    root = Path(root)
    for k, name in enumerate(class_names):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        offset = int(200 * k / max(num_classes, 1))
        for i in range(images_per_class):
            shape = (h, w) if channels == 1 else (h, w, 3)
            img = rng.randint(0, 56, size=shape) + offset
            Image.fromarray(img.astype(np.uint8)).save(folder / f'img_{i:03d}.png')
    return str(root)


def tiny_cls_config(data_root: Union[str, Path],
                    work_dir: Union[str, Path, None] = None,
                    num_classes: int = 2,
                    img_size: int = 16,
                    batch_size: int = 2,
                    max_iters: int = 4,
                    checkpoint_interval: Optional[int] = None,
                    val: bool = True,
                    lr: float = 0.1,
                    seed: Optional[int] = 0,
                    base_channels: int = 8) -> dict:
    """A complete, tiny mmpretrain training config as a plain ``dict``.

    An ``ImageClassifier`` (mmpretrain ``ResNet`` depth 18 with ``base_channels`` wide stages,
    default 8 -> 64 output channels, ~0.2M parameters; ``GlobalAveragePooling``;
    ``LinearClsHead``) on an image folder written by :func:`make_image_folder`, trained with
    SGD for ``max_iters`` iterations (``IterBasedTrainLoop``, ``InfiniteSampler``, iteration
    logging), a checkpoint every
    ``checkpoint_interval`` iterations (default: only at the end), logging every iteration.
    ``val=True`` adds val/test loops on the same folder with ``Accuracy`` top-1. Everything runs
    in the main process (``num_workers=0``). The ``env_cfg.dist_cfg.backend`` stays ``'nccl'``
    as in real configs (the tools switch to gloo on CPU).

    With bfloat16 autocast (``--amp`` on CPU) use ``img_size >= 32``: at 16 the last stage
    runs a stride-2 conv on a 1x1 map, whose CPU bf16 backward (torch 2.14) returns
    non-finite weight gradients.

    The dict can be edited freely, then built in-process with
    ``Runner.from_cfg(mmengine.Config(cfg))`` or written with :func:`write_config` for the
    tools. ``default_scope='mmpretrain'`` and ``custom_imports`` imports ``mmrm``.
    """
    data_root = str(data_root)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=img_size),
        dict(type='PackInputs'),
    ]

    def loader(train):
        sampler = (dict(type='InfiniteSampler', shuffle=True) if train else dict(
            type='DefaultSampler', shuffle=False))
        return dict(
            batch_size=batch_size,
            num_workers=0,
            dataset=dict(
                type='CustomDataset',
                data_root=data_root,
                with_label=True,
                pipeline=copy.deepcopy(pipeline)),
            sampler=sampler,
            collate_fn=dict(type='default_collate'))

    stages = 4
    cfg = dict(
        default_scope='mmpretrain',
        custom_imports=dict(imports=['mmrm'], allow_failed_imports=False),
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(
                type='ClsDataPreprocessor',
                num_classes=num_classes,
                mean=[127.5, 127.5, 127.5],
                std=[64.0, 64.0, 64.0],
                to_rgb=True),
            backbone=dict(
                type='ResNet',
                depth=18,
                stem_channels=base_channels,
                base_channels=base_channels,
                num_stages=stages,
                out_indices=(stages - 1, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead',
                num_classes=num_classes,
                in_channels=base_channels * 2**(stages - 1),
                loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                topk=(1, ))),
        train_dataloader=loader(True),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4)),
        param_scheduler=[
            dict(type='MultiStepLR', by_epoch=False, milestones=[10**6], gamma=0.1)
        ],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=False,
                interval=checkpoint_interval or max_iters),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=dict(type='VisualizationHook', enable=False),
        ),
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='nccl')),
        log_processor=dict(by_epoch=False),
        vis_backends=[dict(type='LocalVisBackend')],
        visualizer=dict(
            type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')]),
        log_level='INFO',
        load_from=None,
        resume=False,
        randomness=dict(seed=seed, deterministic=False),
    )
    if val:
        cfg.update(
            val_dataloader=loader(False),
            val_evaluator=dict(type='Accuracy', topk=(1, )),
            val_cfg=dict(),
            test_dataloader=loader(False),
            test_evaluator=dict(type='Accuracy', topk=(1, )),
            test_cfg=dict())
    if work_dir is not None:
        cfg['work_dir'] = str(work_dir)
    return cfg


def write_config(cfg: dict, path: Union[str, Path]) -> str:
    """Write a config dict as an mmengine python config file; return the path.

    Uses ``mmengine.Config(cfg).dump`` so the file round-trips with ``Config.fromfile``.
    """
    from mmengine.config import Config
    path = str(path)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    Config(copy.deepcopy(cfg)).dump(path)
    return path


def find_free_port() -> int:
    """A TCP port that was free a moment ago (for MASTER_PORT / PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tool_env(extra_pythonpath: Sequence[Union[str, Path]] = (), **env) -> dict:
    """Environment for running ``tools/*.py`` / ``tools/*.sh`` in a subprocess.

    The current interpreter's directory goes first on ``PATH`` (so the shell scripts'
    ``python`` is the venv python), the repository root and ``extra_pythonpath`` go on
    ``PYTHONPATH`` and CUDA is hidden; the thread counts of 1 come from the test process's
    environment (``tests/conftest.py``), so two ranks share two cores politely. Keyword
    arguments override variables.
    """
    e = dict(os.environ)
    e['PATH'] = osp.dirname(sys.executable) + os.pathsep + e.get('PATH', '')
    paths = [str(p) for p in extra_pythonpath] + [str(REPO_ROOT)]
    if e.get('PYTHONPATH'):
        paths.append(e['PYTHONPATH'])
    e['PYTHONPATH'] = os.pathsep.join(paths)
    e['CUDA_VISIBLE_DEVICES'] = ''
    e.update({k: str(v) for k, v in env.items()})
    return e


def newcomer_env(**env) -> dict:
    """:func:`tool_env` as a shell is right after ``make install``: the interpreter's folder
    (the venv's ``bin``) is not on ``PATH`` and ``PYTHON`` is unset, so a shell tool has to
    find the repository's ``.venv`` itself (``tools/python.sh``). Where this interpreter is not
    the repository's ``.venv`` (tests run from another environment), ``PYTHON`` names it."""
    e = tool_env(**env)
    bin_dir = osp.dirname(sys.executable)
    e['PATH'] = os.pathsep.join(p for p in e['PATH'].split(os.pathsep) if p and p != bin_dir)
    e.pop('PYTHON', None)
    e.pop('VIRTUAL_ENV', None)
    venv_python = REPO_ROOT / '.venv' / 'bin' / 'python'
    if not (venv_python.exists() and osp.samefile(osp.dirname(venv_python), bin_dir)):
        e['PYTHON'] = sys.executable
    return e


#: what a Python started with :func:`classification_only_env` cannot import
CLASSIFICATION_ONLY_BLOCKS = ('mmcv._ext', 'mmdet', 'mmseg')


def classification_only_env(folder: Union[str, Path], **env) -> dict:
    """:func:`tool_env` for a subprocess that sees the stack as the classification-only
    ``.venv`` of ``make demo`` has it: mmcv without its compiled ops, no mmdet, no mmseg.

    A ``sitecustomize.py`` written into ``folder`` (first on ``PYTHONPATH``) puts ``None`` into
    ``sys.modules`` for :data:`CLASSIFICATION_ONLY_BLOCKS` before anything runs; Python then
    refuses those imports (``ModuleNotFoundError``, as for a module that is not installed), and
    mmrm's and the installer's checks honour the same convention.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'sitecustomize.py').write_text(
        'import sys\n' + ''.join(f"sys.modules['{m}'] = None\n"
                                  for m in CLASSIFICATION_ONLY_BLOCKS))
    return tool_env(extra_pythonpath=[folder], **env)


def _write_idx(path, array):
    """An IDX file (big-endian header: magic 0x08 ubyte + ndim, then each dim as int32)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, 'wb') as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        f.write(np.asarray(array.shape, dtype='>i4').tobytes())
        f.write(array.tobytes())


def write_fashion_mnist(root, n_train=4, n_test=2, seed=0):
    """The four uncompressed Fashion-MNIST IDX files mmpretrain's ``FashionMNIST`` reads
    (random 28x28 images, labels ``i % 10``)."""
    rng = np.random.RandomState(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (('train', n_train), ('t10k', n_test)):
        _write_idx(root / f'{prefix}-images-idx3-ubyte', rng.randint(0, 256, (n, 28, 28)))
        _write_idx(root / f'{prefix}-labels-idx1-ubyte', np.arange(n) % 10)
    return str(root)


def load_tool(rel: str):
    """Import a script under the repository (e.g. ``'tools/analysis_tools/plot_sweep.py'``) as
    a module, so a test calls its ``main(argv)`` in-process."""
    import importlib.util
    path = REPO_ROOT / rel
    spec = importlib.util.spec_from_file_location(path.stem, str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: classes and last-map channels of :func:`tiny_rm_config` (ResNet-18 base 8 -> 64 channels)
TINY_RM_NUM_CLASSES = 3
TINY_RM_BASE = 8
TINY_RM_LAST_CHANNELS = TINY_RM_BASE * 8


def tiny_rm_config(data_root, batch_size: int = 4) -> dict:
    """:func:`tiny_cls_config` turned into full RM: RMClassifier, RoI head (omega 0.1), RM
    augment (alpha 0.5), soft CE; 3 classes, a 64-channel last map, with validation."""
    cfg = tiny_cls_config(data_root, num_classes=TINY_RM_NUM_CLASSES, batch_size=batch_size,
                          base_channels=TINY_RM_BASE, val=True)
    model = cfg['model']
    model['type'] = 'RMClassifier'
    model['data_preprocessor']['type'] = 'RMDataPreprocessor'
    model['head']['loss']['use_soft'] = True
    model['roi_head'] = dict(type='RoIConsistencyHead', omega=0.1)
    model['train_cfg'] = dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5))
    return cfg


def make_tiny_rm_setup(root: Union[str, Path]) -> dict:
    """A tiny image folder, an RM config ``tiny_rm.py`` and its sibling ``tiny_mixup.py``
    (Mixup alpha 0.4; no CutMix sibling, so the analysis tools fall back to CutMix alpha 1).
    Returns ``dict(root, data, cfg, rm_path)``."""
    root = Path(root)
    data = make_image_folder(root / 'data', num_classes=TINY_RM_NUM_CLASSES,
                             images_per_class=4, size=16)
    cfg = tiny_rm_config(data)
    rm_path = write_config(cfg, root / 'tiny_rm.py')
    mix = copy.deepcopy(cfg)
    mix['model'].update(type='ImageClassifier', train_cfg=dict(
        augments=dict(type='Mixup', alpha=0.4)))
    mix['model'].pop('roi_head')
    mix['model']['data_preprocessor']['type'] = 'ClsDataPreprocessor'
    write_config(mix, root / 'tiny_mixup.py')
    return dict(root=root, data=data, cfg=cfg, rm_path=rm_path)
