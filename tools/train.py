# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmrm.
"""Train a model from any OpenMMLab 2.0 config (mmpretrain, mmdet, mmseg, ...).

The config's ``default_scope`` decides which repository's registries build it; ``import mmrm``
registers the RecursiveMix components (and makes MMEngine checkpoints loadable under torch's
weights-only ``torch.load``). Single process::

    python tools/train.py configs/rm/resnet18_2xb64_cifar100_rm.py

Several processes (GPUs, or CPU processes with gloo when there is no CUDA)::

    tools/dist_train.sh CONFIG NUM_PROCS [--amp] [--cfg-options ...]
"""
import argparse
import os
import os.path as osp
import sys
from copy import deepcopy

try:
    import mmrm  # noqa: F401  (registers RM components, safe checkpoint globals)
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmrm  # noqa: F401

import torch
from mmengine.config import ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmrm.engine import (CheckpointError, check_resume_checkpoint, check_rm_recipe, setup_amp,
                         setup_cpu_distributed, teardown_distributed)
from mmrm.utils.stack import exit_on_missing, load_config_checked


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a model (any OpenMMLab 2.0 config; mmrm '
        'components are registered)',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='On a machine without CUDA, --launcher pytorch/slurm/mpi '
        'trains with one CPU process per rank over gloo (the config is '
        'not changed on disk: env_cfg.dist_cfg.backend becomes gloo and the '
        'DDP wrapper gets device_ids=None).')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training. With CUDA: '
        'optim_wrapper.type=AmpOptimWrapper, float16 autocast, '
        'loss_scale="dynamic" (unless the config sets one). Without CUDA: '
        'optim_wrapper.type=CPUAmpOptimWrapper (mmrm), bfloat16 autocast '
        '(CPU autocast supports bfloat16 only; mmengine\'s AmpOptimWrapper '
        'refuses to run without CUDA) with a CPU GradScaler.')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='whether not to evaluate the checkpoint during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='whether to auto scale the learning rate according to the '
        'actual batch size and the original batch size '
        '(needs auto_scale_lr.base_batch_size in the config).')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='whether to disable the pin_memory option in dataloaders '
        '(pin_memory defaults to True only when CUDA is available).')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='whether to disable the persistent_workers option in dataloaders '
        '(persistent_workers defaults to True when num_workers > 0).')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch`
    # will pass the `--local-rank` parameter to `tools/train.py` instead
    # of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def set_dataloader_defaults(cfg, field, scope, no_pin_memory=False,
                            no_persistent_workers=False,
                            persistent_default=True):
    """OpenMMLab's dataloader defaults, made safe for CPU and any repo.

    pin_memory: True when CUDA is available; persistent_workers: True when
    ``num_workers > 0`` (torch refuses it with 0 workers); collate_fn:
    ``default_collate`` for mmpretrain configs (what mmpretrain's tools do),
    mmengine's default (``pseudo_collate``) for the other repositories.
    """
    if cfg.get(field, None) is None:
        return
    defaults = ConfigDict(pin_memory=torch.cuda.is_available())
    if persistent_default and cfg[field].get('num_workers', 0) > 0:
        defaults.persistent_workers = True
    if scope == 'mmpretrain':
        defaults.collate_fn = dict(type='default_collate')
    loader_cfg = deepcopy(defaults)
    loader_cfg.update(cfg[field])
    cfg[field] = loader_cfg
    if no_pin_memory:
        cfg[field]['pin_memory'] = False
    if no_persistent_workers and 'persistent_workers' in cfg[field]:
        cfg[field]['persistent_workers'] = False


def merge_args(cfg, args):
    """Merge CLI arguments to config."""
    cfg.launcher = args.launcher

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    # resume training
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # enable auto scale learning rate
    if args.auto_scale_lr:
        if ('auto_scale_lr' in cfg and cfg.auto_scale_lr is not None
                and 'base_batch_size' in cfg.auto_scale_lr):
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')

    scope = cfg.get('default_scope', None)
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_dataloader_defaults(cfg, field, scope, args.no_pin_memory,
                                args.no_persistent_workers)

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # after --cfg-options, so that options for the validation loader of a config (shared
    # option lists, as tools/downstream.py passes) do not fail against a removed loader
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    # after --cfg-options so that a switched optim_wrapper is converted too
    if args.amp:
        setup_amp(cfg)
    return cfg


def build_runner(cfg):
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    # build customized runner from the registry if `runner_type` is set
    return RUNNERS.build(cfg)


def main(argv=None):
    args = parse_args(argv)
    # a detection / segmentation config in the classification-only .venv of `make demo`
    # stops here, naming what is missing and `make install`
    cfg = load_config_checked(args.config)
    cfg = merge_args(cfg, args)
    # a recipe switch RM cannot run stops now, not at its epoch
    check_rm_recipe(cfg)
    try:
        # a checkpoint to resume from that cannot be (missing, empty, truncated, foreign,
        # refused, or weights only) stops before anything is built; any other checkpoint
        # the run loads (load_from, auto-resume, init_cfg) with the same one-line message
        if args.resume not in (None, 'auto'):
            check_resume_checkpoint(args.resume)
        # CPU-only machine + launcher: gloo process group and CPU DDP wrapper
        cpu_dist = setup_cpu_distributed(cfg)
        runner = build_runner(cfg)
        runner.train()
    except CheckpointError as exc:
        raise SystemExit(f'tools/train.py: {exc}') from None
    teardown_distributed(exit_process=cpu_dist)


if __name__ == '__main__':
    exit_on_missing(main)
