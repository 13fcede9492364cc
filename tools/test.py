# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmrm.
"""Test (and evaluate) a checkpoint with any OpenMMLab 2.0 config.

The config's ``default_scope`` ('mmpretrain', 'mmdet', 'mmseg', ...) decides which repository
runs it. ``import mmrm`` registers the RecursiveMix components and allowlists the globals of
MMEngine checkpoints for torch's weights-only loading. Examples::

    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/test.py CONFIG CHECKPOINT --out metrics.json --out-item metrics
    tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [args]
"""
import argparse
import os
import os.path as osp
import sys
import warnings
from copy import deepcopy

try:
    import mmrm  # noqa: F401  (registers RM components, safe checkpoint globals)
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmrm  # noqa: F401

import mmengine
import torch
from mmengine.config import ConfigDict, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmrm.engine import CheckpointError, setup_cpu_distributed, teardown_distributed
from mmrm.utils.stack import exit_on_missing, load_config_checked


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and eval) a model (any OpenMMLab 2.0 config; mmrm '
        'components are registered)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        help='the file to output results: a .pkl/.pickle of the predictions '
        '(default, or --out-item pred) or the metrics (--out-item metrics, '
        'any format mmengine.dump writes: .json/.yaml/.pkl). For mmseg '
        'configs a path that is not .pkl/.pickle is the directory of '
        'formatted predictions, as in mmseg\'s own tools/test.py.')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='To output whether metrics or predictions. '
        'Defaults to output predictions.')
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
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision test (test_cfg.fp16=True: '
        'float16 on CUDA, bfloat16 autocast on CPU)')
    parser.add_argument(
        '--show-dir',
        help='directory where the visualization images will be saved.')
    parser.add_argument(
        '--show',
        action='store_true',
        help='whether to display the prediction results in a window.')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='visualize per interval samples.')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='display time of every window. (second)')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='whether to disable the pin_memory option in dataloaders '
        '(pin_memory defaults to True only when CUDA is available).')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='Whether to enable the Test-Time-Aug (TTA). If the config file '
        'has `tta_pipeline` and `tta_model` fields, use them to determine the '
        'TTA transforms and how to merge the TTA results. Otherwise, use flip '
        'TTA (mmpretrain: averaging classification scores; mmdet: '
        'DetTTAModel with NMS). mmseg configs must define both.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (without CUDA: CPU processes over gloo)')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch`
    # will pass the `--local-rank` parameter to `tools/test.py` instead
    # of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args, scope):
    """Turn on the repository's visualization hook (the keys differ)."""
    hooks = cfg.get('default_hooks', None) or {}
    if 'visualization' not in hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks. Refer to '
            'usage "visualization=dict(type=\'VisualizationHook\')"')
    hook = hooks['visualization']
    if scope == 'mmdet':
        hook['draw'] = True
        hook['interval'] = args.interval
        if args.show:
            hook['show'] = True
            hook['wait_time'] = args.wait_time
        if args.show_dir:
            hook['test_out_dir'] = args.show_dir
    elif scope == 'mmseg':
        hook['draw'] = True
        hook['interval'] = args.interval
        if args.show:
            hook['show'] = True
            hook['wait_time'] = args.wait_time
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    else:  # mmpretrain and mmpretrain-style hooks
        hook['enable'] = True
        hook['show'] = args.show
        hook['wait_time'] = args.wait_time
        hook['out_dir'] = args.show_dir
        hook['interval'] = args.interval
    return cfg


def _innermost_dataset(dataset_cfg):
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def enable_tta(cfg, scope):
    if scope == 'mmseg':
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise RuntimeError('--tta with an mmseg config needs `tta_model` '
                               'and `tta_pipeline` in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
        return cfg
    if 'tta_model' not in cfg:
        if scope == 'mmdet':
            warnings.warn('Cannot find ``tta_model`` in config, '
                          'we will set it as default.')
            cfg.tta_model = dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
        else:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
    if 'tta_pipeline' not in cfg:
        test_pipeline = _innermost_dataset(cfg.test_dataloader.dataset).pipeline
        cfg.tta_pipeline = deepcopy(test_pipeline)
        flip_tta = dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ],
                [test_pipeline[-1]],
            ])
        cfg.tta_pipeline[-1] = flip_tta
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg


def merge_args(cfg, args):
    """Merge CLI arguments to config."""
    cfg.launcher = args.launcher
    scope = cfg.get('default_scope', None)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint

    # enable automatic-mixed-precision test
    if args.amp:
        if cfg.get('test_cfg', None) is None:
            cfg.test_cfg = ConfigDict()
        cfg.test_cfg.fp16 = True

    if args.show or (args.show_dir is not None):
        trigger_visualization_hook(cfg, args, scope)

    if args.tta:
        enable_tta(cfg, scope)

    # mmseg's --out: a directory of formatted predictions
    if (scope == 'mmseg' and args.out is not None and args.out_item != 'metrics'
            and not args.out.endswith(('.pkl', '.pickle'))):
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    # ----------------- Default dataloader args -----------------
    if cfg.get('test_dataloader', None) is not None:
        defaults = ConfigDict(pin_memory=torch.cuda.is_available())
        if scope == 'mmpretrain':
            defaults.collate_fn = dict(type='default_collate')
        loader_cfg = deepcopy(defaults)
        loader_cfg.update(cfg.test_dataloader)
        cfg.test_dataloader = loader_cfg
        if args.no_pin_memory:
            cfg.test_dataloader['pin_memory'] = False

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def build_runner(cfg):
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def _pred_dumper(scope, out):
    if scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out)
    return DumpResults(out_file_path=out)


def main(argv=None):
    args = parse_args(argv)

    if args.out is None and args.out_item is not None:
        raise ValueError('Please use `--out` argument to specify the '
                         'path of the output file before using `--out-item`.')

    # a detection / segmentation config in the classification-only .venv of `make demo`
    # stops here, naming what is missing and `make install`
    cfg = load_config_checked(args.config)
    cfg = merge_args(cfg, args)
    scope = cfg.get('default_scope', None)
    cpu_dist = setup_cpu_distributed(cfg)
    runner = build_runner(cfg)

    dump_pred = (
        args.out is not None and args.out_item in ('pred', None)
        and not (scope == 'mmseg'
                 and not args.out.endswith(('.pkl', '.pickle'))))
    if dump_pred:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out for predictions must be a .pkl/.pickle '
                             f'file, got {args.out}')
        runner.test_evaluator.metrics.append(_pred_dumper(scope, args.out))

    try:
        metrics = runner.test()
    except CheckpointError as exc:  # the checkpoint, named with what is wrong with it
        raise SystemExit(f'tools/test.py: {exc}') from None

    if args.out and args.out_item == 'metrics':
        if runner.rank == 0:
            mmengine.dump(metrics, args.out)
    teardown_distributed(exit_process=cpu_dist)
    return metrics


if __name__ == '__main__':
    exit_on_missing(main)
