"""Is a downstream run's seed spread its BatchNorm statistics? Score a finished fine-tuning of
:mod:`mmrm.experiments.transfer` as it was trained, then again after recomputing every BatchNorm's
running mean / variance on the train canvases with the weights fixed ("precise BN", as
MMPretrain's ``PreciseBNHook``: the plain average of per-batch statistics instead of the
training's exponential average of statistics taken while the weights moved; Wu & Johnson,
"Rethinking Batch in BatchNorm", 2021, Sec. 3). The batches go through the data preprocessor in
training mode, which pads the train pipeline's crops of different sizes as training did
(MMPretrain's ``update_bn_stats`` does not, and mmseg's preprocessor then refuses the batch).

A run whose score moves much under precise BN was scored with stale statistics; a run whose
score does not move was not. A probe for choices: it runs on the val canvases by default and
changes no record.
"""
import json
import os.path as osp
import tempfile
from typing import Dict, Optional

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from .transfer import (DOWNSTREAM_MODELS, DownstreamModel, canvas_data_options, check_split,
                       derived_metrics, model_scores, no_detection_metrics, parse_options)

__all__ = ['precise_bn_scores', 'recompute_bn_stats']


def recompute_bn_stats(model: torch.nn.Module, loader, num_samples: int) -> int:
    """Set the running mean / variance of every BatchNorm of ``model`` in training mode to the
    average of its batch statistics over the first batches of ``loader`` until ``num_samples``
    samples are seen (at least one batch), the weights unchanged; the number of such layers.
    The layers' momentum is restored afterwards."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative: running stats = mean over the batches seen
    seen = 0
    with torch.no_grad():
        for data in loader:  # mmdet's loaders batch by aspect ratio: no fixed batch_size
            # the training forward (losses unused): mmdet's HTC has no working 'tensor' mode
            model(**model.data_preprocessor(data, True), mode='loss')
            seen += len(data['inputs'])
            if seen >= num_samples:
                break
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    return len(layers)


def _scores(model: DownstreamModel, metrics: Dict, tag: str, split: str) -> Dict:
    if not metrics and model.task == 'det':
        metrics = no_detection_metrics(model)  # CocoMetric's empty answer, as the chain reads it
    return model_scores(model, derived_metrics(metrics), tag, split)


def precise_bn_scores(run_dir: str, data_root: str, split: str = 'val',
                      num_samples: Optional[int] = None) -> Dict:
    """Scores of the finished fine-tuning in ``run_dir`` (a folder of
    :class:`~mmrm.experiments.transfer.TransferChain` with its ``result.json``) on the ``split``
    canvases of ``data_root``, before and after precise BN on ``num_samples`` train canvases
    (default: one pass over them, in the train pipeline).

    Returns ``dict(name, model, method, seed, pretrain_seed, split, num_samples, bn_layers,
    before, after)``, ``before`` / ``after`` being the table's columns of the model. ``before``
    is the run's own evaluation again (equal to its record's scores on that split).
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    check_split(split)
    with open(osp.join(run_dir, 'result.json')) as f:
        record = json.load(f)
    res = record['result']
    model = DOWNSTREAM_MODELS[res['model']]
    # the config as the run's last Runner dumped it (the scorer's: training's and test's options)
    config = osp.join(run_dir, osp.basename(model.config))
    if not osp.isfile(config):
        raise FileNotFoundError(f'{run_dir}: no {osp.basename(model.config)} (the config the '
                                'run trained with)')
    with open(osp.join(run_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    cfg = Config.fromfile(config)
    options = canvas_data_options(model, osp.abspath(data_root), 'train') + \
        canvas_data_options(model, osp.abspath(data_root), split)
    cfg.merge_from_dict(parse_options(options))
    for loader in ('train_dataloader', 'test_dataloader'):  # in this process
        cfg[loader].update(num_workers=0, persistent_workers=False)
    cfg.update(load_from=checkpoint, resume=False, log_level='WARNING')
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):  # no val loop to build
        cfg.pop(key, None)
    tag = record['name']
    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        if 'visualizer' in cfg:  # a named global instance: not the one of an earlier run
            cfg.visualizer.name = f'precise_bn{work_dir}'
        runner = Runner.from_cfg(cfg)
        before = _scores(model, runner.test(), tag, split)
        net = runner.model
        loader = runner.train_dataloader
        if num_samples is None:
            num_samples = len(loader.dataset)
        net.train()
        bn_layers = recompute_bn_stats(net, loader, num_samples)
        net.eval()
        after = _scores(model, runner.test_loop.run(), tag, split)
    return dict(name=tag, model=res['model'], method=res['method'], seed=res['seed'],
                pretrain_seed=res.get('pretrain_seed'), split=split, num_samples=num_samples,
                bn_layers=bn_layers, before=before, after=after)
