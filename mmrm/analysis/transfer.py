"""Does RM pretraining transfer? The downstream chain of the paper (Tables 7-9), offline.

For each pretraining method (``scratch``: no pretraining; ``baseline``; ``cutmix``; ``rm``; or any
other Fashion-MNIST comparator config) the chain

1. pretrains the Fashion-MNIST network (``configs/rm/resnet18-w16_1xb128_fashion-mnist*.py``,
   validating every epoch and keeping the best epoch, as the authors fine-tune their
   ``fold1_best.pth``), or reuses a finished pretraining;
2. writes its backbone with ``tools/model_converters/rm2backbone.py`` and checks with
   :func:`mmrm.analysis.downstream.check_backbone_init` that every downstream config loads it with
   0 missing / 0 unexpected / 0 shape-mismatched keys;
3. fine-tunes ATSS, GFL, Mask R-CNN, HTC (MMDetection) and PSPNet, UperNet (MMSegmentation) on
   the Fashion-MNIST canvases (``configs/downstream/fashion_mnist``: the COCO / ADE20K configs with
   what the data forces changed) with ``tools/train.py``, and evaluates them with
   ``tools/test.py`` (``CocoMetric``: bbox AP, mask AP; ``IoUMetric``: mIoU);
4. writes every metric to a JSON file and prints a Markdown table, mean +- std over the seeds.

Each step is a run of :mod:`mmrm.analysis.runs` (its own folder named by its key, a log per
attempt, an atomic result record) whose body calls the repository's own tools, as a user would;
the launcher hands the runs to submitit (local processes or Slurm jobs). Finished runs of the same
key are found on disk and skipped, an interrupted one resumes from its last checkpoint. The
models and the paper's numbers are data (``configs/downstream/fashion_mnist/models.json``), the
table is :mod:`mmrm.analysis.transfer_report`. The command line is ``tools/downstream.py``
(``make downstream``).
"""
import contextlib
import functools
import io
import json
import os
import os.path as osp
import platform
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from mmrm.utils.machine import cpu_model

from .runs import (REPO_ROOT, Launcher, Run, RunContext, RunKey, config_digest, file_sha256,
                   files_digest, git_commit, write_json_atomic)
from .transfer_report import (DOWNSTREAM_MODELS, PAPER_METHODS, DownstreamModel,
                              markdown_table, summarize)
from .work_dirs import best_checkpoint, best_metric

__all__ = [
    'DownstreamModel', 'DOWNSTREAM_MODELS', 'PAPER_METHODS', 'pretrain_configs',
    'TransferChain', 'summarize', 'markdown_table', 'cpu_model', 'REPO_ROOT'
]

FASHION_MNIST_PREFIX = 'configs/rm/resnet18-w16_1xb128_fashion-mnist'
FASHION_MNIST_FILES = r'(train|t10k)-(images-idx3|labels-idx1)-ubyte(\.gz)?'
#: what every pretraining sets: validate each epoch, keep the best epoch's checkpoint
PRETRAIN_OPTIONS = ('default_hooks.checkpoint.save_best=accuracy/top1',
                    'default_hooks.checkpoint.rule=greater', 'train_cfg.val_interval=1')
#: a scratch fine-tuning: a random backbone has nothing to freeze or keep
SCRATCH_OPTIONS = ('model.backbone.init_cfg=None', 'model.backbone.frozen_stages=-1',
                   'model.backbone.norm_eval=False')


def pretrain_configs(root: str = REPO_ROOT) -> Dict[str, Optional[str]]:
    """``{method: pretraining config}``: ``scratch`` (None), ``baseline`` and every Fashion-MNIST
    comparator config (``..._fashion-mnist_<method>.py``), relative to ``root``."""
    methods: Dict[str, Optional[str]] = {'scratch': None, 'baseline': FASHION_MNIST_PREFIX + '.py'}
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
        if m not in known or m == 'scratch':
            raise ValueError(f'--pretrained {m}=...: {m!r} is not a pretraining method '
                             f'(allowed: {", ".join(k for k in known if k != "scratch")})')
        if not osp.isfile(path):
            raise FileNotFoundError(f'--pretrained {m}={path}: no such checkpoint')


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


def _coco_results_empty(log_file: str) -> bool:
    """Whether mmdet's CocoMetric logged that no detection was kept on the whole set."""
    with open(log_file, errors='replace') as f:
        return any('The testing results of the whole dataset is empty' in line for line in f)


def _finetune_body(ctx: RunContext, python: str, model_name: str, method: str, seed: int,
                   backbone: Optional[str], options: List[str], train_data: List[str],
                   test_data: List[str]) -> Dict:
    """Fine-tune (resuming an interrupted attempt) and evaluate one model; its scores."""
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
    metrics_path = osp.join(wd, 'metrics.json')
    start = time.time()
    ctx.call([python, _tool('test.py'), model.config, ckpt, '--work-dir', wd, '--out',
              metrics_path, '--out-item', 'metrics', '--cfg-options', *options, *test_data])
    test_s = time.time() - start
    with open(metrics_path) as f:
        raw = json.load(f)
    tag = f'{model_name} {method} seed {seed}'
    notes = []
    if not raw and model.task == 'det' and _coco_results_empty(ctx.log):
        # CocoMetric returns no metric at all when the model kept no detection (all scores
        # under test_cfg's threshold): that is an AP of 0, not a broken run
        notes.append(f'{tag}: no detection kept on the whole val set; AP 0')
        raw = {key: 0. for _, key, _ in model.metrics}
    scores = {}
    for column, key, scale in model.metrics:
        if key not in raw:
            raise RuntimeError(f'{tag}: {key!r} missing from the evaluator\'s metrics '
                               f'{sorted(raw)}')
        scores[column] = round(float(raw[key]) * scale, 2)
    return dict(model=model_name, method=method, seed=seed, scores=scores, metrics=raw,
                backbone=backbone, train_s=round(train_s, 1), test_s=round(test_s, 1),
                notes=notes)


class TransferChain:
    """Runs the chain for ``methods`` x ``models`` x ``seeds`` under ``work_dir``.

    Args:
        work_dir: everything is written below it (``pretrain/<method>_seed<s>-<key>/``,
            ``<model>/<method>_seed<s>-<key>/``, ``results.json``, ``results.md``).
        data_root: the canvas dataset (``tools/dataset_converters/fashion_mnist_canvases.py``).
        fashion_mnist: the Fashion-MNIST IDX files (``make data``).
        pretrained: ``{method: checkpoint}`` of finished pretrainings to use instead of
            pretraining those methods (their sha256 is part of the runs' keys).
        pretrain_seed: seed of the pretraining runs (one per method, shared by all seeds).
        threads: torch threads of each fine-tuning; jobs: fine-tunings run at once (a
            pretraining runs alone with ``threads * jobs`` threads).
        pretrain_options: extra ``--cfg-options`` of the pretraining runs.
        finetune_options: extra ``--cfg-options`` of every fine-tuning and its test, or
            ``{'det': [...], 'seg': [...]}`` per task (their loops differ: epochs / iterations).
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
                 pretrain_seed: int = 0,
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
        self.pretrain_seed = pretrain_seed
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
    def pretrain_run(self, method: str) -> Run:
        """The pretraining (or conversion of a given checkpoint) of ``method``."""
        config = pretrain_configs()[method]
        given = self.pretrained.get(method)
        if given is not None:
            key = RunKey(config_digest(osp.join(REPO_ROOT, config)),
                         checkpoints=dict(pretrained=file_sha256(given)))
            options: List[str] = []
        else:
            options = [*PRETRAIN_OPTIONS, *self.pretrain_options]
            key = RunKey(config_digest(osp.join(REPO_ROOT, config)), options,
                         data=dict(fashion_mnist=files_digest(self.fashion_mnist,
                                                              FASHION_MNIST_FILES)),
                         seed=self.pretrain_seed)
            options = [f'randomness.seed={self.pretrain_seed}', *options] + [
                f'{loader}.dataset.data_root={self.fashion_mnist}'
                for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
        stem = f'{method}_given' if given else f'{method}_seed{self.pretrain_seed}'
        return Run(f'pretrain {method}', osp.join(self.work_dir, 'pretrain'), stem, key,
                   functools.partial(_pretrain_body, python=self.python, config=config,
                                     options=options, given=given),
                   threads=self.threads * self.jobs, group='pretrain', cost=600.)

    def _data_options(self, model: DownstreamModel, phase: str) -> List[str]:
        """The canvas root for the dataloaders (and COCO evaluator) a phase builds."""
        root = self.data_root
        if phase == 'train':  # trained with --no-validate: no val loader to point anywhere
            return [f'train_dataloader.dataset.data_root={root}']
        opts = [f'test_dataloader.dataset.data_root={root}']
        if model.task == 'det':
            ann = osp.join(root, 'annotations', 'instances_val.json')
            opts.append(f'test_evaluator.ann_file={ann}')
        return opts

    def finetune_run(self, model_name: str, method: str, seed: int,
                     backbone: Optional[str]) -> Run:
        """The fine-tuning and test of one model from ``backbone`` (None: scratch)."""
        model = DOWNSTREAM_MODELS[model_name]
        init = list(SCRATCH_OPTIONS) if backbone is None else []
        shaping = [*init, *self.finetune_options[model.task]]
        key = RunKey(config_digest(osp.join(REPO_ROOT, model.config)), shaping,
                     data=dict(canvas=_canvas_meta(self.data_root)),
                     checkpoints={} if backbone is None else dict(backbone=file_sha256(backbone)),
                     seed=seed)
        options = [f'randomness.seed={seed}', *shaping] + (
            [] if backbone is None else [f'model.backbone.init_cfg.checkpoint={backbone}'])
        return Run(f'{model_name} {method} seed {seed}', osp.join(self.work_dir, model_name),
                   f'{method}_seed{seed}', key,
                   functools.partial(_finetune_body, python=self.python, model_name=model_name,
                                     method=method, seed=seed, backbone=backbone,
                                     options=options,
                                     train_data=self._data_options(model, 'train'),
                                     test_data=self._data_options(model, 'test')),
                   threads=self.threads, group=model_name, cost=60 * model.minutes)

    def finetune(self, model_name: str, method: str, seed: int,
                 backbone: Optional[str]) -> Dict:
        """Fine-tune and evaluate one model (or find it done); returns its result."""
        run = self.finetune_run(model_name, method, seed, backbone)
        return self._result(self.launcher.run([run])[0])

    def _result(self, record: Dict) -> Dict:
        """A fine-tuning's result with the run's record: wall time, key, where it lies."""
        for note in record['result'].get('notes', ()):
            self.log(f'[note] {note}')
        return dict(record['result'], wall_s=record['wall_s'], key=record['digest'],
                    commit=record['commit'])

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
                f'no canvas dataset in {self.data_root}: compose it with `make canvases` (or '
                'python tools/dataset_converters/fashion_mnist_canvases.py --out '
                f'{self.data_root})')
        if any(m not in ('scratch', *self.pretrained) for m in self.methods):
            from mmrm.datasets import load_fashion_mnist
            for split in ('train', 'val'):  # FashionMNISTMissing says to run `make data`
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

    def _finetune_runs(self, backbones: Dict[str, Optional[str]]) -> List[Run]:
        # longest runs first, so that parallel jobs end together
        by_cost = sorted(self.models, key=lambda m: -DOWNSTREAM_MODELS[m].minutes)
        return [self.finetune_run(model, method, seed, backbones[method])
                for seed in self.seeds for method in self.methods for model in by_cost]

    def run(self) -> Dict:
        self.check_inputs()
        chain_start = time.time()
        methods = [m for m in self.methods if m != 'scratch']
        records = self.pretrain_launcher.run(
            [self.pretrain_run(m) for m in methods],
            describe=lambda r: f'top-1 {r["result"]["top1"]}', label='pretrain ')
        pretrain_records = {m: dict(r['result'], wall_s=r['wall_s'], key=r['digest'])
                            for m, r in zip(methods, records)}
        backbones: Dict[str, Optional[str]] = {'scratch': None}
        for method, record in pretrain_records.items():
            self.check_keys(method, record['backbone'])
            backbones[method] = record['backbone']

        def describe(record: Dict) -> str:
            return ', '.join(f'{k} {v:.2f}' for k, v in record['result']['scores'].items())
        records = self.launcher.run(self._finetune_runs(backbones), describe=describe)
        results = [self._result(r) for r in records]
        return self._write(results, pretrain_records, wall_s=time.time() - chain_start)

    def report(self) -> Dict:
        """Tabulate the finished runs of ``methods`` x ``models`` x ``seeds`` of this chain's
        keys found under ``work_dir`` (e.g. chains run in parts), running nothing; missing
        runs are named."""
        pretrain_records, backbones = {}, {'scratch': None}
        missing = []
        for method in self.methods:
            if method == 'scratch':
                continue
            record = self.pretrain_run(method).finished(self.log)
            if record is None:
                missing.append(f'pretrain {method}')
            else:
                pretrain_records[method] = dict(record['result'], wall_s=record['wall_s'],
                                                key=record['digest'])
                backbones[method] = record['result']['backbone']
        results = []
        for seed in self.seeds:
            for method in self.methods:
                for model in self.models:
                    tag = f'{model} {method} seed {seed}'
                    if method not in backbones:
                        missing.append(tag)
                        continue
                    record = self.finetune_run(model, method, seed,
                                               backbones[method]).finished(self.log)
                    if record is None:
                        missing.append(tag)
                    else:
                        results.append(self._result(record))
        if missing:
            self.log(f'[report] not run (left out of the table): {", ".join(missing)}')
        if not results:
            raise RuntimeError(f'no finished run under {self.work_dir}')
        return self._write(results, pretrain_records, wall_s=None)

    def _write(self, results: List[Dict], pretrain_records: Dict,
               wall_s: Optional[float]) -> Dict:
        """Write ``results.json`` and ``results.md`` (atomically) and print the table."""
        summary = summarize(results)
        out = dict(
            meta=dict(cpu=cpu_model(), threads=self.threads, jobs=self.jobs,
                      python=platform.python_version(), date=time.strftime('%Y-%m-%d'),
                      commit=git_commit(), data_root=self.data_root,
                      canvas=_canvas_meta(self.data_root), seeds=self.seeds,
                      pretrain_seed=self.pretrain_seed,
                      wall_s=None if wall_s is None else round(wall_s, 1)),
            pretrain=pretrain_records, runs=results, summary=summary)
        os.makedirs(self.work_dir, exist_ok=True)
        write_json_atomic(osp.join(self.work_dir, 'results.json'), out)
        table = markdown_table(out)
        tmp = osp.join(self.work_dir, f'results.md.tmp{os.getpid()}')
        with open(tmp, 'w') as f:
            f.write(table)
        os.replace(tmp, osp.join(self.work_dir, 'results.md'))
        self.log('\n' + table)
        self.log(f'metrics of every run: {osp.join(self.work_dir, "results.json")}')
        return out


def _canvas_meta(root: str) -> Optional[Dict]:
    try:
        with open(osp.join(root, 'meta.json')) as f:
            meta = json.load(f)
        return dict(options=meta['options'], counts=meta['counts'], instances=meta['instances'])
    except (OSError, KeyError, ValueError):
        return None
