"""The pretraining stage of the chain: one run pretrains the Fashion-MNIST network (validating
every epoch and keeping the best epoch, as the authors fine-tune their ``fold1_best.pth``) or
takes a given checkpoint, and writes its backbone with
``tools/model_converters/rm2backbone.py``; :func:`check_keys` proves that every downstream
config loads that backbone with 0 missing / 0 unexpected / 0 shape-mismatched keys.
"""
import contextlib
import functools
import io
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence

from ..keys import RunKey, config_digest, file_sha256, files_digest
from ..records import REPO_ROOT
from ..run import Run, RunContext
from ..work_dirs import best_checkpoint, best_metric
from .finetune import tool
from .models import DOWNSTREAM_MODELS
from .plan import FASHION_MNIST_FILES, PRETRAIN_OPTIONS, pretrain_configs

__all__ = ['pretrain_body', 'pretrain_run', 'check_keys']


def pretrain_body(ctx: RunContext, python: str, config: Optional[str], options: List[str],
                  given: Optional[str]) -> Dict:
    """Pretrain (or take the ``given`` checkpoint) and write this run's own backbone file."""
    wd = ctx.folder
    if given is None:
        ctx.call([python, tool('train.py'), config, '--work-dir', wd, '--resume',
                  '--cfg-options', *options])
        ckpt = best_checkpoint(wd)
        top1 = best_metric(wd, 'accuracy/top1')
        top1 = None if top1 is None else round(top1, 2)
    else:
        ckpt, top1 = given, None
    backbone = osp.join(wd, 'backbone.pth')
    ctx.call([python, tool('model_converters/rm2backbone.py'), ckpt, backbone])
    return dict(checkpoint=ckpt, backbone=backbone, top1=top1)


def check_keys(models: Sequence[str], method: str, backbone: str,
               log: Callable[[str], None] = print) -> None:
    """Every downstream config of ``models`` must load ``backbone`` with no key or shape
    mismatch (:func:`mmrm.analysis.downstream.check_backbone_init`)."""
    import logging

    from mmengine.logging import MMLogger

    from mmrm.analysis.downstream import check_backbone_init
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)  # not the per-parameter initialisation report
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            reports = {name: check_backbone_init(
                osp.join(REPO_ROOT, DOWNSTREAM_MODELS[name].config), checkpoint=backbone)
                for name in models}
    finally:
        logger.setLevel(level)
    for name, report in reports.items():
        if not report.ok:
            raise RuntimeError(
                f'the {method} checkpoint {backbone} does not fit the backbone of '
                f'{DOWNSTREAM_MODELS[name].config}:\n{report}')
    log(f'[check] {method}: {backbone} loads into all {len(models)} downstream '
        'backbones with 0 missing / 0 unexpected / 0 shape-mismatched keys')


def pretrain_run(method: str, seed: int, work_dir: str, fashion_mnist: str,
                 given: Optional[str] = None, options: Sequence[str] = (),
                 python: str = sys.executable, threads: Optional[int] = None) -> Run:
    """The keyed run that pretrains ``method`` with ``seed`` under ``work_dir/pretrain`` (its
    key: the config, :data:`PRETRAIN_OPTIONS` + ``options``, the Fashion-MNIST files' sha256,
    the seed), or converts its ``given`` checkpoint (key: the config and that file's sha256)."""
    config = pretrain_configs()[method]
    if given is not None:
        key = RunKey(config_digest(osp.join(REPO_ROOT, config)),
                     checkpoints=dict(pretrained=file_sha256(given)))
        cmd_options: List[str] = []
    else:
        shaping = [*PRETRAIN_OPTIONS, *options]
        key = RunKey(config_digest(osp.join(REPO_ROOT, config)), shaping,
                     data=dict(fashion_mnist=files_digest(fashion_mnist, FASHION_MNIST_FILES)),
                     seed=seed)
        cmd_options = [f'randomness.seed={seed}', *shaping] + [
            f'{loader}.dataset.data_root={fashion_mnist}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    stem = f'{method}_given' if given else f'{method}_seed{seed}'
    name = f'pretrain {method}' + ('' if given else f' seed {seed}')
    return Run(name, osp.join(work_dir, 'pretrain'), stem, key,
               functools.partial(pretrain_body, python=python, config=config,
                                 options=cmd_options, given=given),
               threads=threads, group='pretrain', cost=600.)
