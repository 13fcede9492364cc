"""The fine-tuning stage of the chain: one run fine-tunes a downstream model (resuming an
interrupted attempt) with ``tools/train.py`` and scores it on the **test** canvases (the
table's scores) and the **val** canvases (kept for choices) in one :mod:`.score` process.

``CocoMetric`` (bbox AP, mask AP) scores the detectors, ``ClassIoUMetric`` (mIoU over the 10
object classes and over all 11) the segmentors.
"""
import functools
import json
import math
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Tuple

from ..keys import RunKey, config_digest, file_sha256
from ..records import REPO_ROOT
from ..run import Run, RunContext
from .models import DOWNSTREAM_MODELS, LONG_METHODS, DownstreamModel, derived_metrics
from .plan import LONG_FACTOR, SCRATCH_METHODS, TransferPlan
from .records import canvas_meta

__all__ = ['model_scores', 'no_detection_metrics', 'canvas_data_options', 'evaluate_checkpoint',
           'finetune_body', 'finetune_run', 'tool']


def tool(name: str) -> str:
    return osp.join(REPO_ROOT, 'tools', name)


def model_scores(model: DownstreamModel, metrics: Dict, tag: str, split: str) -> Dict:
    """The table's columns of ``model`` from its evaluator's ``metrics`` (with
    :func:`derived_metrics` applied), rounded to 2 decimals; a missing or NaN metric is an
    error naming ``tag`` and ``split``."""
    scores = {}
    for column, key, scale in model.metrics:
        if key not in metrics:
            raise RuntimeError(f'{tag}: {key!r} missing from the evaluator\'s metrics on '
                               f'{split} {sorted(metrics)}')
        value = float(metrics[key]) * scale
        if math.isnan(value):
            raise RuntimeError(f'{tag}: {key!r} is NaN on {split} (no class labelled?)')
        scores[column] = round(value, 2)
    return scores


def no_detection_metrics(model: DownstreamModel) -> Dict[str, float]:
    """The metrics of a detector that kept no detection on the whole set, for which mmdet's
    ``CocoMetric`` returns none at all: an AP of 0 in each of ``model``'s columns."""
    return {key: 0. for _, key, _ in model.metrics}


def canvas_data_options(model: DownstreamModel, root: str, phase: str) -> List[str]:
    """The ``--cfg-options`` that point the dataloaders (and COCO evaluator) a phase builds at
    the canvases in ``root``: 'train', 'test' (the config's test loader: the test canvases) or
    'val' (the test loader and evaluator pointed at the val canvases, for the record's val
    scores)."""
    if phase == 'train':  # trained with --no-validate: no val loader to point anywhere
        return [f'train_dataloader.dataset.data_root={root}']
    split = 'val' if phase == 'val' else 'test'
    opts = [f'test_dataloader.dataset.data_root={root}']
    if model.task == 'det':
        opts.append('test_evaluator.ann_file=' + osp.join(root, 'annotations',
                                                          f'instances_{split}.json'))
        if split == 'val':
            opts += ['test_dataloader.dataset.ann_file=annotations/instances_val.json',
                     'test_dataloader.dataset.data_prefix.img=images/val/']
    elif split == 'val':
        opts += ['test_dataloader.dataset.data_prefix.img_path=images/val',
                 'test_dataloader.dataset.data_prefix.seg_map_path=seg_maps/val']
    return opts


def evaluate_checkpoint(ctx: RunContext, python: str, model: DownstreamModel, tag: str,
                        ckpt: str, options: List[str],
                        data: Dict[str, List[str]]) -> Dict[str, Tuple[Dict, Dict, List]]:
    """``ckpt`` scored on each split of ``data`` (split: its :func:`canvas_data_options`) by
    one :mod:`.score` process: ``{split: (scores, metrics, notes)}``."""
    out = osp.join(ctx.folder, 'metrics.json')
    ctx.call([python, '-m', 'mmrm.experiments.transfer.score', model.config, ckpt,
              '--work-dir', ctx.folder, '--out', out, '--cfg-options', *options] +
             [arg for split, opts in data.items() for arg in (f'--{split}-options', *opts)])
    with open(out) as f:
        result = json.load(f)
    scored = {}
    for split in data:
        raw, notes = result['metrics'][split], []
        if not raw and model.task == 'det' and split in result['empty']:
            # CocoMetric returns no metric at all when the model kept no detection (all scores
            # under test_cfg's threshold): that is an AP of 0, not a broken run
            notes.append(f'{tag}: no detection kept on the whole {split} set; AP 0')
            raw = no_detection_metrics(model)
        raw = derived_metrics(raw)
        scored[split] = model_scores(model, raw, tag, split), raw, notes
    return scored


def finetune_body(ctx: RunContext, python: str, model_name: str, method: str, seed: int,
                  pretrain_seed: Optional[int], backbone: Optional[str], options: List[str],
                  train_data: List[str], test_data: List[str], val_data: List[str],
                  jobs: int = 1) -> Dict:
    """Fine-tune (resuming an interrupted attempt) and evaluate one model on the test canvases
    (the table's scores) and the val canvases (for choices); its scores. ``train_s`` is the
    training's seconds, ``test_s`` the scoring's: both splits since 85075c4 (one process),
    the test split alone in the records made before."""
    model = DOWNSTREAM_MODELS[model_name]
    wd = ctx.folder
    start = time.time()
    cmd = [python, tool('train.py'), model.config, '--work-dir', wd, '--no-validate',
           '--cfg-options', *options, *train_data]
    if osp.isfile(osp.join(wd, 'last_checkpoint')):
        cmd.insert(cmd.index('--no-validate'), '--resume')
    ctx.call(cmd)
    train_s = time.time() - start
    with open(osp.join(wd, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    tag = f'{model_name} {method}' + ('' if pretrain_seed is None else f' pre {pretrain_seed}') \
        + f' seed {seed}'
    start = time.time()  # test_s: the scoring of both splits (one process)
    scored = evaluate_checkpoint(ctx, python, model, tag, ckpt, options,
                                 dict(test=test_data, val=val_data))
    test_s = time.time() - start
    (scores, raw, notes), (val_scores, val_raw, val_notes) = scored['test'], scored['val']
    return dict(model=model_name, method=method, seed=seed, pretrain_seed=pretrain_seed,
                split='test', scores=scores, metrics=raw, val_scores=val_scores,
                val_metrics=val_raw, backbone=backbone, train_s=round(train_s, 1),
                test_s=round(test_s, 1), jobs=jobs, notes=notes + val_notes)


def finetune_run(plan: TransferPlan, model_name: str, method: str, seed: int,
                 backbone: Optional[str], pretrain_seed: Optional[int], work_dir: str,
                 data_root: str, python: str = sys.executable, threads: Optional[int] = None,
                 jobs: int = 1) -> Run:
    """The keyed run that fine-tunes and tests ``model_name`` from ``backbone`` (None:
    scratch) under ``work_dir/<model>``. Its key: the config, the plan's shaping options, the
    canvases' identity, the backbone's sha256 and the seed."""
    model = DOWNSTREAM_MODELS[model_name]
    if (backbone is None) != (method in SCRATCH_METHODS):
        raise ValueError(f'{method}: a backbone is needed exactly when the method is not '
                         f'one of {SCRATCH_METHODS}')
    shaping = plan.shaping_options(model_name, method)
    key = RunKey(config_digest(osp.join(REPO_ROOT, model.config)), shaping,
                 data=dict(canvas=canvas_meta(data_root)),
                 checkpoints={} if backbone is None else dict(backbone=file_sha256(backbone)),
                 seed=seed)
    options = [f'randomness.seed={seed}', *shaping] + (
        [] if backbone is None else [f'model.backbone.init_cfg.checkpoint={backbone}'])
    pre = '' if pretrain_seed is None else f'_pre{pretrain_seed}'
    name = f'{model_name} {method}' + ('' if pretrain_seed is None
                                       else f' pre {pretrain_seed}') + f' seed {seed}'
    factor = LONG_FACTOR if method in LONG_METHODS else 1
    data = {phase: canvas_data_options(model, data_root, phase)
            for phase in ('train', 'test', 'val')}
    return Run(name, osp.join(work_dir, model_name), f'{method}{pre}_seed{seed}', key,
               functools.partial(finetune_body, python=python, model_name=model_name,
                                 method=method, seed=seed, pretrain_seed=pretrain_seed,
                                 backbone=backbone, options=options, train_data=data['train'],
                                 test_data=data['test'], val_data=data['val'], jobs=jobs),
               threads=threads, group=model_name, cost=60 * model.minutes * factor)
