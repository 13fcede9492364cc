"""Does RM pretraining transfer? The downstream chain of the paper (Tables 7-9), offline.

For each pretraining method (``scratch``: no pretraining, the backbone's own default init;
``scratch-long``: the same with 3x the fine-tuning schedule; ``baseline``; ``cutmix``; ``rm``; or
any other Fashion-MNIST comparator config) and pretraining seed the chain

1. pretrains the Fashion-MNIST network (``configs/rm/resnet18-w16_1xb128_fashion-mnist*.py``,
   validating every epoch and keeping the best epoch, as the authors fine-tune their
   ``fold1_best.pth``), or reuses a finished pretraining;
2. writes its backbone with ``tools/model_converters/rm2backbone.py`` and checks with
   :func:`mmrm.analysis.downstream.check_backbone_init` that every downstream config loads it with
   0 missing / 0 unexpected / 0 shape-mismatched keys;
3. fine-tunes ATSS, GFL, Mask R-CNN, HTC (MMDetection) and PSPNet, UperNet (MMSegmentation) on
   the Fashion-MNIST canvases (``configs/downstream/fashion_mnist``: the COCO / ADE20K configs with
   what the data forces changed) with ``tools/train.py``, and evaluates them with
   ``tools/test.py`` (``CocoMetric``: bbox AP, mask AP; ``ClassIoUMetric``: mIoU over the 10
   object classes and over all 11) on the **test** canvases, the table's scores, and on the
   **val** canvases, kept in the record for choices (schedule, lr), never tabulated;
4. writes every metric to a JSON file and prints a Markdown table: mean +- std over the runs and
   the paired differences RM - CutMix and RM - baseline with 95 % intervals
   (:mod:`mmrm.analysis.transfer_report`).

Each step is a run of :mod:`mmrm.analysis.runs` (its own folder named by its key, a log per
attempt, an atomic result record) whose body calls the repository's own tools, as a user would;
the launcher hands the runs to submitit (local processes or Slurm jobs). Finished runs of the same
key are found on disk and skipped, an interrupted one resumes from its last checkpoint. The
models and the paper's numbers are data (``configs/downstream/fashion_mnist/models.json``), the
table is :mod:`mmrm.analysis.transfer_report`, a function of the fine-tuning records alone:
:meth:`TransferChain.export` copies the records to a folder (``results/transfer/``) and
:func:`report_records` regenerates the same table from that folder, bit for bit. The command
line is ``tools/downstream.py`` (``make downstream``).
"""
import contextlib
import functools
import glob
import io
import json
import math
import os
import os.path as osp
import platform
import shutil
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmrm.utils.machine import cpu_model

from .runs import (REPO_ROOT, Launcher, Run, RunContext, RunKey, config_digest, file_sha256,
                   files_digest, git_commit, write_json_atomic)
from .transfer_report import (COMPARISONS, DOWNSTREAM_MODELS, LONG_METHODS, PAPER_METHODS,
                              DownstreamModel, check_split, derived_metrics, markdown_table,
                              paired_difference, summarize)
from .work_dirs import best_checkpoint, best_metric

__all__ = [
    'DownstreamModel', 'DOWNSTREAM_MODELS', 'PAPER_METHODS', 'SCRATCH_METHODS', 'PAIRINGS',
    'pretrain_configs', 'seg_scratch_options', 'long_schedule_options', 'model_scores',
    'no_detection_metrics', 'canvas_data_options', 'TransferChain',
    'load_records', 'records_table', 'report_records', 'run_result', 'summarize',
    'markdown_table', 'cpu_model', 'REPO_ROOT'
]

FASHION_MNIST_PREFIX = 'configs/rm/resnet18-w16_1xb128_fashion-mnist'
FASHION_MNIST_FILES = r'(train|t10k)-(images-idx3|labels-idx1)-ubyte(\.gz)?'
#: what every pretraining sets: validate each epoch, keep the best epoch's checkpoint
PRETRAIN_OPTIONS = ('default_hooks.checkpoint.save_best=accuracy/top1',
                    'default_hooks.checkpoint.rule=greater', 'train_cfg.val_interval=1')
#: the methods without pretraining
SCRATCH_METHODS = ('scratch', 'scratch-long')
#: a scratch fine-tuning: only the checkpoint load is removed. The Pretrained init_cfg is
#: replaced by the backbone's own default init (mmpretrain's ResNet: Kaiming on every Conv2d,
#: Constant 1 / 0 on the norms, which is PyTorch's own norm init, then zero_init_residual):
#: ``init_cfg=None`` would leave the convs at PyTorch's default (kaiming_uniform, a=sqrt(5)), a
#: third of Kaiming's std. A random backbone has nothing to freeze or keep either.
SCRATCH_OPTIONS = ('model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Kaiming',
                   'model.backbone.init_cfg.layer=Conv2d', 'model.backbone.frozen_stages=-1',
                   'model.backbone.norm_eval=False')
#: a scratch segmentor: the segmentors' recipe (canvas.py) gives the random heads
#: ``canvas_seg_head_lr_mult`` times the lr of the pretrained backbone, so as not to scramble
#: what it was pretrained to know; a random backbone has nothing to keep and learns at the
#: heads' lr (no multiplier: one lr, the heads', for every parameter)
SEG_SCRATCH_OPTIONS = ('optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult=1.0', )
#: how fine-tuning seeds meet pretraining seeds: ``cross``, every fine-tuning seed from every
#: pretraining seed; ``cycle``, fine-tuning seed number i from pretraining seed number
#: i mod (number of pretraining seeds): seeds 0 1 2 3 from pretrainings 0 1 0 1, so each cell's
#: runs span both sources of variation at half the cost of crossing them
PAIRINGS = ('cross', 'cycle')
#: scratch-long: this many times the fine-tuning schedule (DESIGN.md §6: a baseline is not
#: handicapped by a schedule made for the pretrained runs)
LONG_FACTOR = 3


def pretrain_configs(root: str = REPO_ROOT) -> Dict[str, Optional[str]]:
    """``{method: pretraining config}``: ``scratch`` and ``scratch-long`` (None), ``baseline``
    and every Fashion-MNIST
    comparator config (``..._fashion-mnist_<method>.py``), relative to ``root``."""
    methods: Dict[str, Optional[str]] = {'scratch': None, 'scratch-long': None,
                                         'baseline': FASHION_MNIST_PREFIX + '.py'}
    folder = osp.join(root, osp.dirname(FASHION_MNIST_PREFIX))
    stem = osp.basename(FASHION_MNIST_PREFIX) + '_'
    for name in sorted(os.listdir(folder)):
        if name.startswith(stem) and name.endswith('.py'):
            methods[name[len(stem):-3]] = osp.join(osp.dirname(FASHION_MNIST_PREFIX), name)
    return methods


def check_choices(methods: Sequence[str], models: Sequence[str],
                  pretrained: Dict[str, str]) -> None:
    """Refuse unknown methods, models and ``--pretrained`` entries, naming the allowed values
    (the one check of the chain and its command line)."""
    known = pretrain_configs()
    for m in methods:
        if m not in known:
            raise ValueError(f'unknown pretraining method {m!r}; allowed: {", ".join(known)}')
    for m in models:
        if m not in DOWNSTREAM_MODELS:
            raise ValueError(f'unknown downstream model {m!r}; allowed: '
                             f'{", ".join(DOWNSTREAM_MODELS)}')
    for m, path in pretrained.items():
        if m not in known or m in SCRATCH_METHODS:
            raise ValueError(f'--pretrained {m}=...: {m!r} is not a pretraining method '
                             f'(allowed: '
                             f'{", ".join(k for k in known if k not in SCRATCH_METHODS)})')
        if not osp.isfile(path):
            raise FileNotFoundError(f'--pretrained {m}={path}: no such checkpoint')


def _parse_options(options: Sequence[str]) -> Dict:
    """``--cfg-options`` strings as MMEngine's ``DictAction`` parses them."""
    from mmengine.config import DictAction
    out = {}
    for item in options:
        key, sep, value = item.partition('=')
        if not sep:
            raise ValueError(f'cfg-option {item!r}: expected KEY=VALUE')
        out[key] = DictAction._parse_iterable(value)
    return out


def _scaled(value, factor: int):
    return [_scaled(v, factor) for v in value] if isinstance(value, (list, tuple)) \
        else value * factor


def long_schedule_options(config: str, options: Sequence[str] = (),
                          factor: int = LONG_FACTOR) -> List[str]:
    """The ``--cfg-options`` that make ``config`` (with ``options`` applied) train ``factor``
    times as long: the loop's ``max_epochs`` / ``max_iters``; its ``val_interval`` and an
    iteration checkpoint interval where they equal the length; every parameter scheduler in
    the loop's unit (epochs for mmdet's loop, iterations for mmseg's) has its ``begin``, ``end``
    and ``milestones`` (and ``T_max``) scaled, so that the steps / the poly decay fall at the
    same fraction of the schedule. A warm-up in the other unit (mmdet's 100-iteration LinearLR
    in an epoch loop) is kept: it is not part of the schedule's length."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(_parse_options(options))
    loop = cfg.train_cfg
    by_epoch = 'max_epochs' in loop
    unit = 'max_epochs' if by_epoch else 'max_iters'
    length = loop[unit]
    out = [f'train_cfg.{unit}={length * factor}']
    if loop.get('val_interval') == length:
        out.append(f'train_cfg.val_interval={length * factor}')
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint') or {}
    if not by_epoch and checkpoint.get('interval') == length:
        out.append(f'default_hooks.checkpoint.interval={length * factor}')
    schedulers = cfg.param_scheduler
    single = isinstance(schedulers, dict)
    for i, sched in enumerate([schedulers] if single else schedulers):
        if bool(sched.get('by_epoch', True)) != by_epoch:
            continue
        for key in ('begin', 'end', 'T_max', 'milestones'):
            value = sched.get(key)
            if value is None or (not isinstance(value, (list, tuple)) and value >= 1e8):
                continue  # absent, or MMEngine's "until the end" (INF)
            scaled = _scaled(value, factor)
            text = f'[{",".join(map(str, scaled))}]' if isinstance(scaled, list) else scaled
            out.append(f'param_scheduler{"" if single else f".{i}"}.{key}={text}')
    return out


def seg_scratch_options(config: str) -> List[str]:
    """The ``--cfg-options`` that give a scratch segmentor one lr, its heads', everywhere:
    :data:`SEG_SCRATCH_OPTIONS` and the optimiser's lr times ``canvas_seg_head_lr_mult``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    lr = round(cfg.optim_wrapper.optimizer.lr * cfg.canvas_seg_head_lr_mult, 12)
    return [*SEG_SCRATCH_OPTIONS, f'optim_wrapper.optimizer.lr={lr!r}']


def _tool(name: str) -> str:
    return osp.join(REPO_ROOT, 'tools', name)


def _pretrain_body(ctx: RunContext, python: str, config: Optional[str], options: List[str],
                   given: Optional[str]) -> Dict:
    """Pretrain (or take the ``given`` checkpoint) and write this run's own backbone file."""
    wd = ctx.folder
    if given is None:
        ctx.call([python, _tool('train.py'), config, '--work-dir', wd, '--resume',
                  '--cfg-options', *options])
        ckpt = best_checkpoint(wd)
        top1 = best_metric(wd, 'accuracy/top1')
        top1 = None if top1 is None else round(top1, 2)
    else:
        ckpt, top1 = given, None
    backbone = osp.join(wd, 'backbone.pth')
    ctx.call([python, _tool('model_converters/rm2backbone.py'), ckpt, backbone])
    return dict(checkpoint=ckpt, backbone=backbone, top1=top1)


def _coco_results_empty(log_file: str, offset: int = 0) -> bool:
    """Whether mmdet's CocoMetric logged, after byte ``offset`` of the log, that no detection
    was kept on the whole set."""
    with open(log_file, 'rb') as f:
        f.seek(offset)
        text = f.read().decode(errors='replace')
    return 'The testing results of the whole dataset is empty' in text


def _log_size(log_file: str) -> int:
    return osp.getsize(log_file) if osp.isfile(log_file) else 0


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


def _evaluate(ctx: RunContext, python: str, model: DownstreamModel, tag: str, ckpt: str,
              split: str, options: List[str], data: List[str]) -> Tuple[Dict, Dict, List]:
    """``tools/test.py`` on the ``split`` canvases: ``(scores, metrics, notes)``."""
    wd = ctx.folder
    metrics_path = osp.join(wd, f'metrics_{split}.json')
    offset = _log_size(ctx.log)
    ctx.call([python, _tool('test.py'), model.config, ckpt, '--work-dir', wd, '--out',
              metrics_path, '--out-item', 'metrics', '--cfg-options', *options, *data])
    with open(metrics_path) as f:
        raw = json.load(f)
    notes = []
    if not raw and model.task == 'det' and _coco_results_empty(ctx.log, offset):
        # CocoMetric returns no metric at all when the model kept no detection (all scores
        # under test_cfg's threshold): that is an AP of 0, not a broken run
        notes.append(f'{tag}: no detection kept on the whole {split} set; AP 0')
        raw = no_detection_metrics(model)
    raw = derived_metrics(raw)
    return model_scores(model, raw, tag, split), raw, notes


def _finetune_body(ctx: RunContext, python: str, model_name: str, method: str, seed: int,
                   pretrain_seed: Optional[int], backbone: Optional[str], options: List[str],
                   train_data: List[str], test_data: List[str], val_data: List[str],
                   jobs: int = 1) -> Dict:
    """Fine-tune (resuming an interrupted attempt) and evaluate one model on the test canvases
    (the table's scores) and the val canvases (for choices); its scores."""
    model = DOWNSTREAM_MODELS[model_name]
    wd = ctx.folder
    start = time.time()
    cmd = [python, _tool('train.py'), model.config, '--work-dir', wd, '--no-validate',
           '--cfg-options', *options, *train_data]
    if osp.isfile(osp.join(wd, 'last_checkpoint')):
        cmd.insert(cmd.index('--no-validate'), '--resume')
    ctx.call(cmd)
    train_s = time.time() - start
    with open(osp.join(wd, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    tag = f'{model_name} {method}' + ('' if pretrain_seed is None else f' pre {pretrain_seed}') \
        + f' seed {seed}'
    start = time.time()
    scores, raw, notes = _evaluate(ctx, python, model, tag, ckpt, 'test', options, test_data)
    test_s = time.time() - start
    val_scores, val_raw, val_notes = _evaluate(ctx, python, model, tag, ckpt, 'val', options,
                                               val_data)
    return dict(model=model_name, method=method, seed=seed, pretrain_seed=pretrain_seed,
                split='test', scores=scores, metrics=raw, val_scores=val_scores,
                val_metrics=val_raw, backbone=backbone, train_s=round(train_s, 1),
                test_s=round(test_s, 1), jobs=jobs, notes=notes + val_notes)


def run_result(record: Dict) -> Dict:
    """A fine-tuning's result with what its run record adds: wall time, key, commit, CPU and
    threads (what the table is made of)."""
    return dict(record['result'], wall_s=record['wall_s'], key=record['digest'],
                commit=record.get('commit'), cpu=record.get('cpu'),
                threads=record.get('threads'))


def _differences(results: Sequence[Dict]) -> Dict:
    """``{model: {column: {'rm - cutmix': paired_difference, ...}}}`` for results.json."""
    out: Dict = {}
    for model in sorted({r['model'] for r in results}):
        for column, _, _ in DOWNSTREAM_MODELS[model].metrics:
            for a, b in COMPARISONS:
                d = paired_difference(results, model, column, a, b)
                if d is not None:
                    out.setdefault(model, {}).setdefault(column, {})[f'{a} - {b}'] = d
    return out


def load_records(folder: str) -> Tuple[List[Dict], List[Dict]]:
    """The run records in ``folder`` (what :meth:`TransferChain.export` wrote:
    ``<model>/<run>.json``, ``pretrain/<run>.json``), in path order: ``(fine-tunings,
    pretrainings)``, each a ``result.json`` as the run wrote it. A file that is not a run record
    (truncated, no key / result) is an error naming it."""
    if not osp.isdir(folder):
        raise RuntimeError(f'{folder}: no such folder (tools/downstream.py --export {folder} '
                           'writes the records there)')
    finetunes, pretrainings = [], []
    for path in sorted(glob.glob(osp.join(folder, '**', '*.json'), recursive=True)):
        try:
            with open(path) as f:
                record = json.load(f)
        except ValueError as exc:
            raise RuntimeError(f'{path} is not a run record (truncated?): {exc}') from exc
        if not (isinstance(record, dict) and 'key' in record and 'result' in record):
            raise RuntimeError(f'{path} is not a run record (no key / result)')
        # a fine-tuning scores a model; a pretraining is kept for the trace
        (finetunes if 'model' in record['result'] else pretrainings).append(record)
    return finetunes, pretrainings


def records_table(folder: str) -> str:
    """The transfer table made from the fine-tuning records in ``folder`` alone."""
    finetunes, _ = load_records(folder)
    if not finetunes:
        raise RuntimeError(f'no fine-tuning record in {folder}')
    return markdown_table(dict(runs=[run_result(r) for r in finetunes]))


def report_records(folder: str, log: Callable[[str], None] = print) -> str:
    """:func:`records_table` of ``folder``, written to ``folder/results.md``: the same bytes
    as the chain's own ``results.md`` for the same records."""
    table = records_table(folder)
    _write_text(osp.join(folder, 'results.md'), table)
    log('\n' + table)
    return table


def _write_text(path: str, text: str) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


class TransferChain:
    """Runs the chain for ``methods`` x ``models`` x ``pretrain_seeds`` x ``seeds`` under
    ``work_dir``.

    Args:
        work_dir: everything is written below it (``pretrain/<method>_seed<p>-<key>/``,
            ``<model>/<method>_pre<p>_seed<s>-<key>/`` (``<method>_seed<s>-<key>`` for the
            scratch methods), ``results.json``, ``results.md``).
        data_root: the canvas dataset (``tools/dataset_converters/fashion_mnist_canvases.py``).
        fashion_mnist: the Fashion-MNIST IDX files (``make data``).
        pretrained: ``{method: checkpoint}`` of finished pretrainings to use instead of
            pretraining those methods (their sha256 is part of the runs' keys; one checkpoint:
            no pretraining seed, ``pretrain_seed`` None in the records).
        pretrain_seeds: seeds of the pretraining runs (an int: one). The scratch methods have
            none.
        pairing: which fine-tuning seeds run from which pretraining seed (:data:`PAIRINGS`):
            ``cross`` (each from each) or ``cycle`` (the i-th fine-tuning seed from the
            (i mod P)-th of the P pretraining seeds).
        split: the canvases whose scores the progress lines and the printed table show:
            ``test`` (the reported table, ``results.md``) or ``val`` (for choices: the table
            of the val scores, ``results_val.md``; no test score is shown). The records and
            ``results.json`` hold both.
        threads: torch threads of each fine-tuning; jobs: fine-tunings run at once (a
            pretraining runs alone with ``threads * jobs`` threads).
        pretrain_options: extra ``--cfg-options`` of the pretraining runs.
        finetune_options: extra ``--cfg-options`` of every fine-tuning and its test, or
            ``{'det': [...], 'seg': [...]}`` per task (their loops differ: epochs / iterations).
            ``scratch-long`` multiplies the schedule they leave by :data:`LONG_FACTOR`.
        launcher, slurm: how runs are started (:class:`mmrm.analysis.runs.Launcher`).
        log: where progress lines go.
    """

    def __init__(self,
                 work_dir: str,
                 methods: Sequence[str],
                 models: Sequence[str],
                 seeds: Sequence[int],
                 data_root: str = 'data/fashion_mnist_canvas',
                 fashion_mnist: str = 'data/fashion_mnist',
                 pretrained: Optional[Dict[str, str]] = None,
                 pretrain_seeds: Union[int, Sequence[int]] = (0, ),
                 pairing: str = 'cross',
                 split: str = 'test',
                 threads: int = 2,
                 jobs: int = 1,
                 pretrain_options: Sequence[str] = (),
                 finetune_options=(),
                 launcher: str = 'local',
                 slurm: Optional[Dict] = None,
                 python: str = sys.executable,
                 log: Callable[[str], None] = print):
        self.pretrained = {m: osp.abspath(p) for m, p in (pretrained or {}).items()}
        check_choices(methods, models, self.pretrained)
        self.work_dir = osp.abspath(work_dir)
        self.methods, self.models, self.seeds = list(methods), list(models), list(seeds)
        self.data_root = osp.abspath(data_root)
        self.fashion_mnist = osp.abspath(fashion_mnist)
        self.pretrain_seeds = [pretrain_seeds] if isinstance(pretrain_seeds, int) else list(
            pretrain_seeds)
        if not self.pretrain_seeds or len(set(self.pretrain_seeds)) != len(self.pretrain_seeds):
            raise ValueError(f'pretrain_seeds must be distinct and not empty, got '
                             f'{self.pretrain_seeds}')
        if pairing not in PAIRINGS:
            raise ValueError(f'pairing must be one of {", ".join(PAIRINGS)}, got {pairing!r}')
        self.pairing = pairing
        check_split(split)
        self.split = split
        self.threads, self.jobs = threads, jobs
        self.pretrain_options = list(pretrain_options)
        if isinstance(finetune_options, dict):
            unknown = set(finetune_options) - {'det', 'seg'}
            if unknown:
                raise ValueError(f'finetune_options: unknown task(s) {sorted(unknown)}; '
                                 'allowed: det, seg')
            self.finetune_options = {t: list(finetune_options.get(t, ())) for t in ('det', 'seg')}
        else:
            self.finetune_options = {t: list(finetune_options) for t in ('det', 'seg')}
        self.python, self.log = python, log
        folder = osp.join(self.work_dir, '.submitit')
        # a pretraining runs alone (the fine-tunings wait for it), with all the jobs' threads
        pretrain_slurm = dict(slurm or {})
        if 'cpus_per_task' in pretrain_slurm:
            pretrain_slurm['cpus_per_task'] = threads * jobs
        self.pretrain_launcher = Launcher(launcher, folder, jobs=1, slurm=pretrain_slurm,
                                          log=log)
        self.launcher = Launcher(launcher, folder, jobs=jobs, slurm=slurm, log=log)

    # ---------------------------------------------------------------------------------------
    # the runs and their keys
    # ---------------------------------------------------------------------------------------
    def seeds_of(self, method: str) -> List[Optional[int]]:
        """The pretraining seeds of ``method``: none for scratch (``[None]``), the given
        checkpoint's (``[None]``), else :attr:`pretrain_seeds`."""
        if method in SCRATCH_METHODS or method in self.pretrained:
            return [None]
        return list(self.pretrain_seeds)

    def pairs_of(self, method: str) -> List[Tuple[Optional[int], int]]:
        """``(pretraining seed, fine-tuning seed)`` of every fine-tuning of ``method``, in
        fine-tuning seed order (see ``pairing``)."""
        pre = self.seeds_of(method)
        if self.pairing == 'cycle':
            return [(pre[i % len(pre)], s) for i, s in enumerate(self.seeds)]
        return [(p, s) for s in self.seeds for p in pre]

    def pretrain_run(self, method: str, seed: Optional[int] = None) -> Run:
        """The pretraining of ``method`` with ``seed`` (default: the first pretraining seed),
        or the conversion of its given checkpoint."""
        config = pretrain_configs()[method]
        given = self.pretrained.get(method)
        seed = self.pretrain_seeds[0] if seed is None else seed
        if given is not None:
            key = RunKey(config_digest(osp.join(REPO_ROOT, config)),
                         checkpoints=dict(pretrained=file_sha256(given)))
            options: List[str] = []
        else:
            options = [*PRETRAIN_OPTIONS, *self.pretrain_options]
            key = RunKey(config_digest(osp.join(REPO_ROOT, config)), options,
                         data=dict(fashion_mnist=files_digest(self.fashion_mnist,
                                                              FASHION_MNIST_FILES)),
                         seed=seed)
            options = [f'randomness.seed={seed}', *options] + [
                f'{loader}.dataset.data_root={self.fashion_mnist}'
                for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
        stem = f'{method}_given' if given else f'{method}_seed{seed}'
        name = f'pretrain {method}' + ('' if given else f' seed {seed}')
        return Run(name, osp.join(self.work_dir, 'pretrain'), stem, key,
                   functools.partial(_pretrain_body, python=self.python, config=config,
                                     options=options, given=given),
                   threads=self.threads * self.jobs, group='pretrain', cost=600.)

    def _data_options(self, model: DownstreamModel, phase: str) -> List[str]:
        return canvas_data_options(model, self.data_root, phase)

    def shaping_options(self, model_name: str, method: str) -> List[str]:
        """The ``--cfg-options`` that shape a fine-tuning of ``method`` (part of its key)."""
        model = DOWNSTREAM_MODELS[model_name]
        user = self.finetune_options[model.task]
        if method not in SCRATCH_METHODS:
            return list(user)
        options = list(SCRATCH_OPTIONS)
        if model.task == 'seg':
            options += seg_scratch_options(osp.join(REPO_ROOT, model.config))
        options += user
        if method in LONG_METHODS:
            options += long_schedule_options(osp.join(REPO_ROOT, model.config), options)
        return options

    def finetune_run(self, model_name: str, method: str, seed: int,
                     backbone: Optional[str], pretrain_seed: Optional[int] = None) -> Run:
        """The fine-tuning and test of one model from ``backbone`` (None: scratch)."""
        model = DOWNSTREAM_MODELS[model_name]
        if (backbone is None) != (method in SCRATCH_METHODS):
            raise ValueError(f'{method}: a backbone is needed exactly when the method is not '
                             f'one of {SCRATCH_METHODS}')
        shaping = self.shaping_options(model_name, method)
        key = RunKey(config_digest(osp.join(REPO_ROOT, model.config)), shaping,
                     data=dict(canvas=_canvas_meta(self.data_root)),
                     checkpoints={} if backbone is None else dict(backbone=file_sha256(backbone)),
                     seed=seed)
        options = [f'randomness.seed={seed}', *shaping] + (
            [] if backbone is None else [f'model.backbone.init_cfg.checkpoint={backbone}'])
        pre = '' if pretrain_seed is None else f'_pre{pretrain_seed}'
        name = f'{model_name} {method}' + ('' if pretrain_seed is None
                                           else f' pre {pretrain_seed}') + f' seed {seed}'
        factor = LONG_FACTOR if method in LONG_METHODS else 1
        return Run(name, osp.join(self.work_dir, model_name), f'{method}{pre}_seed{seed}', key,
                   functools.partial(_finetune_body, python=self.python, model_name=model_name,
                                     method=method, seed=seed, pretrain_seed=pretrain_seed,
                                     backbone=backbone, options=options,
                                     train_data=self._data_options(model, 'train'),
                                     test_data=self._data_options(model, 'test'),
                                     val_data=self._data_options(model, 'val'), jobs=self.jobs),
                   threads=self.threads, group=model_name, cost=60 * model.minutes * factor)

    def finetune(self, model_name: str, method: str, seed: int,
                 backbone: Optional[str], pretrain_seed: Optional[int] = None) -> Dict:
        """Fine-tune and evaluate one model (or find it done); returns its result."""
        run = self.finetune_run(model_name, method, seed, backbone, pretrain_seed)
        return self._result(self.launcher.run([run])[0])

    def _result(self, record: Dict) -> Dict:
        """A fine-tuning's result with the run's record (:func:`run_result`)."""
        for note in record['result'].get('notes', ()):
            self.log(f'[note] {note}')
        return run_result(record)

    # ---------------------------------------------------------------------------------------
    # the whole chain
    # ---------------------------------------------------------------------------------------
    def check_inputs(self) -> None:
        """Everything the chain needs, before anything starts: MMDetection, MMSegmentation
        and mmcv's ops, the canvases, Fashion-MNIST (for a method to pretrain)."""
        from mmrm.datasets import canvas_dataset_ready
        from mmrm.utils.stack import require
        require('the downstream chain (detection and segmentation fine-tunings)')
        if not canvas_dataset_ready(self.data_root):
            raise FileNotFoundError(
                f'no canvas dataset (of the current format: train / val / test splits) in '
                f'{self.data_root}: compose it with `make canvases` (or '
                'python tools/dataset_converters/fashion_mnist_canvases.py --out '
                f'{self.data_root})')
        if any(m not in (*SCRATCH_METHODS, *self.pretrained) for m in self.methods):
            from mmrm.datasets import load_fashion_mnist
            for split in ('train', 'test'):  # FashionMNISTMissing says to run `make data`
                load_fashion_mnist(self.fashion_mnist, split)

    def check_keys(self, method: str, backbone: str) -> None:
        """Every downstream config must load ``backbone`` with no key or shape mismatch."""
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
                    for name in self.models}
        finally:
            logger.setLevel(level)
        for name, report in reports.items():
            if not report.ok:
                raise RuntimeError(
                    f'the {method} checkpoint {backbone} does not fit the backbone of '
                    f'{DOWNSTREAM_MODELS[name].config}:\n{report}')
        self.log(f'[check] {method}: {backbone} loads into all {len(self.models)} downstream '
                 'backbones with 0 missing / 0 unexpected / 0 shape-mismatched keys')

    def _pretrainings(self) -> List[Tuple[str, Optional[int]]]:
        """``(method, pretraining seed)`` of every pretraining (or conversion) the chain needs;
        a given checkpoint has seed None."""
        return [(m, p) for m in self.methods if m not in SCRATCH_METHODS
                for p in self._used_seeds(m)]

    def _used_seeds(self, method: str) -> List[Optional[int]]:
        """The pretraining seeds of ``method`` that some fine-tuning runs from."""
        used = {p for p, _ in self.pairs_of(method)}
        return [p for p in self.seeds_of(method) if p in used]

    def _finetune_runs(self, backbones: Dict[Tuple[str, Optional[int]], Optional[str]]
                       ) -> List[Run]:
        # longest runs first, so that parallel jobs end together
        by_cost = sorted(self.models, key=lambda m: -DOWNSTREAM_MODELS[m].minutes)
        return [self.finetune_run(model, method, seed, backbones[(method, p)], p)
                for seed in self.seeds for method in self.methods
                for p, s in self.pairs_of(method) if s == seed for model in by_cost]

    @staticmethod
    def _pretrain_entry(record: Dict) -> Dict:
        return dict(record['result'], wall_s=record['wall_s'], key=record['digest'])

    def run(self) -> Dict:
        self.check_inputs()
        chain_start = time.time()
        pretrainings = self._pretrainings()
        records = self.pretrain_launcher.run(
            [self.pretrain_run(m, p) for m, p in pretrainings],
            describe=lambda r: f'top-1 {r["result"]["top1"]}', label='pretrain ')
        backbones: Dict[Tuple[str, Optional[int]], Optional[str]] = {
            (m, None): None for m in self.methods if m in SCRATCH_METHODS}
        pretrain_records = {}
        for (method, p), record in zip(pretrainings, records):
            self.check_keys(method, record['result']['backbone'])
            backbones[(method, p)] = record['result']['backbone']
            pretrain_records[_pretrain_label(method, p)] = self._pretrain_entry(record)

        def describe(record: Dict) -> str:
            scores = record['result']['scores' if self.split == 'test' else 'val_scores']
            return ', '.join(f'{self.split} {k} {v:.2f}' for k, v in scores.items())
        records = self.launcher.run(self._finetune_runs(backbones), describe=describe)
        results = [self._result(r) for r in records]
        return self._write(results, pretrain_records, wall_s=time.time() - chain_start)

    def _collect(self) -> Tuple[Dict[str, Dict], List[Tuple[Run, Dict]], List[str]]:
        """The finished runs of this chain's keys under ``work_dir``, running nothing:
        ``({label: pretraining record}, [(run, fine-tuning record)], missing names)``."""
        pretrain, backbones, missing = {}, {}, []
        for method in self.methods:
            for p in self._used_seeds(method):
                if method in SCRATCH_METHODS:
                    backbones[(method, p)] = None
                    continue
                run = self.pretrain_run(method, p)
                record = run.finished(self.log)
                if record is None:
                    missing.append(run.name)
                else:
                    pretrain[_pretrain_label(method, p)] = (run, record)
                    backbones[(method, p)] = record['result']['backbone']
        finetunes = []
        for seed in self.seeds:
            for method in self.methods:
                for p in [p for p, s in self.pairs_of(method) if s == seed]:
                    for model in self.models:
                        if (method, p) not in backbones:
                            missing.append(f'{model} {method}' + (
                                '' if p is None else f' pre {p}') + f' seed {seed}')
                            continue
                        run = self.finetune_run(model, method, seed, backbones[(method, p)], p)
                        record = run.finished(self.log)
                        if record is None:
                            missing.append(run.name)
                        else:
                            finetunes.append((run, record))
        if missing:
            self.log(f'[report] not run (left out of the table): {", ".join(missing)}')
        if not finetunes:
            raise RuntimeError(f'no finished run under {self.work_dir}')
        return pretrain, finetunes, missing

    def report(self) -> Dict:
        """Tabulate the finished runs of ``methods`` x ``models`` x ``pretrain_seeds`` x
        ``seeds`` of this chain's keys found under ``work_dir`` (e.g. chains run in parts),
        running nothing; missing runs are named."""
        pretrain, finetunes, _ = self._collect()
        results = [self._result(record) for _, record in finetunes]
        return self._write(results, {k: self._pretrain_entry(r) for k, (_, r) in
                                     pretrain.items()}, wall_s=None)

    def export(self, dest: str) -> List[str]:
        """Copy the run records behind the table (every finished pretraining and fine-tuning
        of this chain's keys: ``result.json`` with its key) to ``dest``, as
        ``<folder relative to work_dir>.json`` (``pretrain/rm_seed0-<key>.json``,
        ``atss/rm_pre0_seed0-<key>.json``), replace the records exported there before, and
        write the table made from them alone (:func:`report_records`). Returns the files."""
        pretrain, finetunes, _ = self._collect()
        runs = [run for run, _ in pretrain.values()] + [run for run, _ in finetunes]
        dest = osp.abspath(dest)
        wanted = {}
        for run in runs:
            rel = osp.relpath(run.folder, self.work_dir)
            wanted[osp.join(dest, rel + '.json')] = run.result_path
        for old in glob.glob(osp.join(dest, '**', '*.json'), recursive=True):
            if old not in wanted:  # a record of an earlier export: it is not behind the table
                record = None
                with contextlib.suppress(OSError, ValueError):
                    with open(old) as f:
                        record = json.load(f)
                if isinstance(record, dict) and 'key' in record and 'result' in record:
                    os.remove(old)
        for target, source in sorted(wanted.items()):
            os.makedirs(osp.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
        self.log(f'[export] {len(wanted)} run records to {dest}')
        report_records(dest, log=self.log)
        return sorted(wanted)

    def _write(self, results: List[Dict], pretrain_records: Dict,
               wall_s: Optional[float]) -> Dict:
        """Write ``results.json`` and the table of :attr:`split` (``results.md`` /
        ``results_val.md``; atomically) and print that table."""
        summary = summarize(results)
        out = dict(
            meta=dict(cpu=cpu_model(), threads=self.threads, jobs=self.jobs,
                      python=platform.python_version(), date=time.strftime('%Y-%m-%d'),
                      commit=git_commit(), data_root=self.data_root,
                      canvas=_canvas_meta(self.data_root), seeds=self.seeds,
                      pretrain_seeds=self.pretrain_seeds, pairing=self.pairing, split='test',
                      wall_s=None if wall_s is None else round(wall_s, 1)),
            pretrain=pretrain_records, runs=results, summary=summary,
            differences=_differences(results))
        os.makedirs(self.work_dir, exist_ok=True)
        write_json_atomic(osp.join(self.work_dir, 'results.json'), out)
        table = markdown_table(dict(runs=results), split=self.split)
        _write_text(osp.join(self.work_dir, 'results.md' if self.split == 'test'
                             else 'results_val.md'), table)
        self.log('\n' + table)
        self.log(f'metrics of every run: {osp.join(self.work_dir, "results.json")}')
        return out


def _pretrain_label(method: str, seed: Optional[int]) -> str:
    return method if seed is None else f'{method}_seed{seed}'


def _canvas_meta(root: str) -> Optional[Dict]:
    try:
        with open(osp.join(root, 'meta.json')) as f:
            meta = json.load(f)
        return dict(options=meta['options'], counts=meta['counts'], instances=meta['instances'])
    except (OSError, KeyError, ValueError):
        return None
