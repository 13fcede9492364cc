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

Each step is a subprocess running the repository's own tools, as a user would; finished steps are
found on disk and skipped, an interrupted fine-tuning resumes from its last checkpoint. The
command line is ``tools/downstream.py`` (``make downstream``).
"""
import contextlib
import io
import json
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmrm.utils.machine import cpu_model

__all__ = [
    'DownstreamModel', 'DOWNSTREAM_MODELS', 'pretrain_configs', 'TransferChain', 'summarize',
    'markdown_table', 'cpu_model', 'REPO_ROOT'
]

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FASHION_MNIST_PREFIX = 'configs/rm/resnet18-w16_1xb128_fashion-mnist'


@dataclass(frozen=True)
class DownstreamModel:
    """One downstream model of the paper: its offline config and what it is scored by."""
    name: str
    title: str
    config: str
    #: (column name, key in the evaluator's metrics, scale to percent)
    metrics: Tuple[Tuple[str, str, float], ...]
    #: the paper's ResNet-50 numbers per pretraining (Tables 7-9), per metric column
    paper: Dict[str, Tuple[float, float, float]]
    #: rough minutes of one fine-tuning on one core: long runs are started first, and the ETA
    #: has a figure before any run finished
    minutes: float = 5.

    @property
    def task(self) -> str:
        return 'seg' if self.name in ('pspnet', 'upernet') else 'det'


_OFFLINE = 'configs/downstream/fashion_mnist/'
_BOX = ('box AP', 'coco/bbox_mAP', 100.)
_MASK = ('mask AP', 'coco/segm_mAP', 100.)
_MIOU = ('mIoU', 'mIoU', 1.)
#: Paper numbers are (baseline, CutMix, RM) with a ResNet-50 pretrained on ImageNet.
DOWNSTREAM_MODELS: Dict[str, DownstreamModel] = {
    m.name: m
    for m in (
        DownstreamModel('atss', 'ATSS', _OFFLINE + 'atss_r18-w16_fpn_12e_fashion-mnist-canvas.py',
                        (_BOX, ), {'box AP': (39.4, 40.1, 41.5)}, 2.5),
        DownstreamModel('gfl', 'GFL', _OFFLINE + 'gfl_r18-w16_fpn_12e_fashion-mnist-canvas.py',
                        (_BOX, ), {'box AP': (40.2, 41.3, 41.9)}, 2.5),
        DownstreamModel('mask-rcnn', 'Mask R-CNN',
                        _OFFLINE + 'mask-rcnn_r18-w16_fpn_12e_fashion-mnist-canvas.py',
                        (_BOX, _MASK), {'box AP': (38.2, 38.5, 39.6),
                                        'mask AP': (34.7, 34.8, 35.8)}, 5.),
        DownstreamModel('htc', 'HTC', _OFFLINE + 'htc_r18-w16_fpn_12e_fashion-mnist-canvas.py',
                        (_BOX, _MASK), {'box AP': (41.9, 42.2, 42.8),
                                        'mask AP': (37.1, 37.4, 37.7)}, 16.),
        DownstreamModel('pspnet', 'PSPNet', _OFFLINE + 'pspnet_r18-w16_1k_fashion-mnist-canvas.py',
                        (_MIOU, ), {'mIoU': (40.90, 40.96, 41.73)}, 3.),
        DownstreamModel('upernet', 'UperNet',
                        _OFFLINE + 'upernet_r18-w16_1k_fashion-mnist-canvas.py', (_MIOU, ),
                        {'mIoU': (40.40, 41.24, 42.30)}, 7.),
    )
}
PAPER_METHODS = ('baseline', 'cutmix', 'rm')


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


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class TransferChain:
    """Runs the chain for ``methods`` x ``models`` x ``seeds`` under ``work_dir``.

    Args:
        work_dir: everything is written below it (``pretrain/<method>_seed<s>/``,
            ``<model>/<method>_seed<s>/``, ``results.json``, ``results.md``).
        data_root: the canvas dataset (``tools/dataset_converters/fashion_mnist_canvases.py``).
        fashion_mnist: the Fashion-MNIST IDX files (``make data``).
        pretrained: ``{method: checkpoint}`` of finished pretrainings to reuse instead of
            pretraining those methods.
        pretrain_seed: seed of the pretraining runs (one per method, shared by all seeds).
        threads: torch threads of each subprocess; jobs: fine-tunings run at once.
        pretrain_options: extra ``--cfg-options`` of the pretraining runs.
        finetune_options: extra ``--cfg-options`` of every fine-tuning and its test, or
            ``{'det': [...], 'seg': [...]}`` per task (their loops differ: epochs / iterations).
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
                 python: str = sys.executable,
                 log: Callable[[str], None] = print):
        known = pretrain_configs()
        for m in methods:
            if m not in known:
                raise ValueError(f'unknown pretraining method {m!r}; allowed: '
                                 f'{", ".join(known)}')
        for m in models:
            if m not in DOWNSTREAM_MODELS:
                raise ValueError(f'unknown downstream model {m!r}; allowed: '
                                 f'{", ".join(DOWNSTREAM_MODELS)}')
        self.pretrained = dict(pretrained or {})
        for m, path in self.pretrained.items():
            if m not in known or m == 'scratch':
                raise ValueError(f'--pretrained {m}=...: {m!r} is not a pretraining method '
                                 f'(allowed: {", ".join(k for k in known if k != "scratch")})')
            if not osp.isfile(path):
                raise FileNotFoundError(f'--pretrained {m}={path}: no such checkpoint')
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
        self.python = python
        self._lock = threading.RLock()

        def locked_log(line: str) -> None:  # whole lines from parallel jobs
            with self._lock:
                log(line)
        self.log = locked_log
        self._durations: Dict[str, List[float]] = {}

    # ---------------------------------------------------------------------------------------
    # subprocesses
    # ---------------------------------------------------------------------------------------
    def _env(self, threads: Optional[int] = None) -> dict:
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join([REPO_ROOT] + (
            [env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
        for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            env[var] = str(threads or self.threads)
        env['PYTHONUNBUFFERED'] = '1'  # progress lines as they come, not in bursts
        return env

    def _run(self, tag: str, cmd: List[str], logfile: str,
             threads: Optional[int] = None) -> None:
        """Run a tool, its output to ``logfile``; its training lines (with MMEngine's ETA) are
        echoed with ``tag``."""
        os.makedirs(osp.dirname(logfile), exist_ok=True)
        with open(logfile, 'a') as out:
            out.write('$ ' + ' '.join(cmd) + '\n')
            out.flush()
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=self._env(threads), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, bufsize=1)
            for line in proc.stdout:
                out.write(line)
                if 'eta:' in line or 'Error' in line:
                    self.log(f'  [{tag}] ' + re.sub(r'^\S+ \S+ - mmengine - \w+ - ', '',
                                                    line.rstrip())[:150])
            code = proc.wait()
        if code != 0:
            with open(logfile) as f:
                tail = ''.join(f.readlines()[-25:])
            raise RuntimeError(f'{tag}: `{" ".join(cmd)}` failed with exit status {code}; '
                               f'the end of its log ({logfile}):\n{tail}')

    def _tool(self, name: str) -> str:
        return osp.join(REPO_ROOT, 'tools', name)

    # ---------------------------------------------------------------------------------------
    # 1-2: pretraining and conversion
    # ---------------------------------------------------------------------------------------
    def pretrain_dir(self, method: str) -> str:
        return osp.join(self.work_dir, 'pretrain', f'{method}_seed{self.pretrain_seed}')

    def pretrain(self, method: str) -> Dict:
        """Pretrain ``method`` (or reuse it) and write its backbone; returns its record."""
        wd = self.pretrain_dir(method)
        record_path = osp.join(wd, 'pretrain.json')
        if osp.isfile(record_path):
            with open(record_path) as f:
                record = json.load(f)
            reused = self.pretrained.get(method)
            if osp.isfile(record['backbone']) and (
                    reused is None or osp.abspath(reused) == record['checkpoint']):
                self.log(f'[pretrain] {method}: done before (top-1 {record["top1"]}), '
                         f'{record["backbone"]}')
                return record
        os.makedirs(wd, exist_ok=True)
        start = time.time()
        if method in self.pretrained:
            ckpt, top1, seconds = osp.abspath(self.pretrained[method]), None, None
            self.log(f'[pretrain] {method}: reusing {ckpt}')
        else:
            config = pretrain_configs()[method]
            self.log(f'[pretrain] {method}: {config} (seed {self.pretrain_seed}, best epoch '
                     f'kept; log {wd}/pretrain.log)')
            cmd = [self.python, self._tool('train.py'), config, '--work-dir', wd, '--resume',
                   '--cfg-options', f'randomness.seed={self.pretrain_seed}',
                   'default_hooks.checkpoint.save_best=accuracy/top1',
                   'default_hooks.checkpoint.rule=greater', 'train_cfg.val_interval=1',
                   f'train_dataloader.dataset.data_root={self.fashion_mnist}',
                   f'val_dataloader.dataset.data_root={self.fashion_mnist}',
                   f'test_dataloader.dataset.data_root={self.fashion_mnist}',
                   *self.pretrain_options]
            resumed = osp.isfile(osp.join(wd, 'last_checkpoint'))
            # a pretraining runs alone (the fine-tunings wait for it): all the jobs' threads
            self._run(f'pretrain {method}', cmd, osp.join(wd, 'pretrain.log'),
                      threads=self.threads * self.jobs)
            # the wall time of a whole pretraining, not of the rest of a resumed one
            seconds = None if resumed else time.time() - start
            ckpt, top1 = self._best_checkpoint(wd)
        backbone = osp.join(wd, 'backbone.pth')
        # a work dir gives the converter its best checkpoint, as the README tells users
        src = ckpt if method in self.pretrained else wd
        cmd = [self.python, self._tool('model_converters/rm2backbone.py'), src, backbone]
        self._run(f'convert {method}', cmd, osp.join(wd, 'convert.log'))
        record = dict(method=method, checkpoint=ckpt, backbone=backbone, top1=top1,
                      seconds=None if seconds is None else round(seconds, 1),
                      seed=self.pretrain_seed, config=pretrain_configs().get(method))
        with open(record_path, 'w') as f:
            json.dump(record, f, indent=1)
        took = 'resumed' if seconds is None else f'in {_fmt_time(seconds)}'
        self.log(f'[pretrain] {method}: top-1 {top1} {took}; backbone {backbone}')
        return record

    @staticmethod
    def _best_checkpoint(wd: str) -> Tuple[str, Optional[float]]:
        """The ``best_accuracy_top1_epoch_N.pth`` MMEngine's CheckpointHook kept, and its
        top-1: the highest logged (the hook keeps the checkpoint of the highest)."""
        from mmrm.analysis.work_dirs import best_metric
        best = sorted(f for f in os.listdir(wd) if f.startswith('best_') and f.endswith('.pth'))
        if len(best) != 1:
            raise RuntimeError(f'{wd}: expected one best_*.pth checkpoint, found {best}')
        top1 = best_metric(wd, 'accuracy/top1')
        return osp.join(wd, best[0]), None if top1 is None else round(top1, 2)

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

    # ---------------------------------------------------------------------------------------
    # 3: fine-tuning and evaluation
    # ---------------------------------------------------------------------------------------
    def run_dir(self, model: str, method: str, seed: int) -> str:
        return osp.join(self.work_dir, model, f'{method}_seed{seed}')

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

    def finetune(self, model_name: str, method: str, seed: int,
                 backbone: Optional[str]) -> Dict:
        """Fine-tune and evaluate one model; returns (and writes) its ``result.json``."""
        model = DOWNSTREAM_MODELS[model_name]
        wd = self.run_dir(model_name, method, seed)
        result_path = osp.join(wd, 'result.json')
        if osp.isfile(result_path):
            with open(result_path) as f:
                return json.load(f)
        tag = f'{model_name} {method} seed {seed}'
        os.makedirs(wd, exist_ok=True)
        if backbone is None:  # scratch: a random backbone has nothing to freeze or keep
            init = ['model.backbone.init_cfg=None', 'model.backbone.frozen_stages=-1',
                    'model.backbone.norm_eval=False']
        else:
            init = [f'model.backbone.init_cfg.checkpoint={backbone}']
        options = [f'randomness.seed={seed}', *init, *self.finetune_options[model.task]]
        start = time.time()
        cmd = [self.python, self._tool('train.py'), model.config, '--work-dir', wd,
               '--no-validate', '--cfg-options', *options,
               *self._data_options(model, 'train')]
        if osp.isfile(osp.join(wd, 'last_checkpoint')):
            cmd.insert(cmd.index('--no-validate'), '--resume')
        self._run(tag, cmd, osp.join(wd, 'train.log'))
        train_s = time.time() - start
        with open(osp.join(wd, 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        metrics_path = osp.join(wd, 'metrics.json')
        start = time.time()
        cmd = [self.python, self._tool('test.py'), model.config, ckpt, '--work-dir', wd,
               '--out', metrics_path, '--out-item', 'metrics', '--cfg-options', *options,
               *self._data_options(model, 'test')]
        self._run(tag + ' (test)', cmd, osp.join(wd, 'test.log'))
        test_s = time.time() - start
        with open(metrics_path) as f:
            raw = json.load(f)
        scores = {}
        if not raw and model.task == 'det' and _coco_results_empty(osp.join(wd, 'test.log')):
            # CocoMetric returns no metric at all when the model kept no detection (all
            # scores under test_cfg's threshold): that is an AP of 0, not a broken run
            self.log(f'[note] {tag}: no detection kept on the whole val set; AP 0')
            raw = {key: 0. for _, key, _ in model.metrics}
        for column, key, scale in model.metrics:
            if key not in raw:
                raise RuntimeError(f'{tag}: {key!r} missing from the evaluator\'s metrics '
                                   f'{sorted(raw)}')
            scores[column] = round(float(raw[key]) * scale, 2)
        result = dict(model=model_name, method=method, seed=seed, scores=scores, metrics=raw,
                      backbone=backbone, train_s=round(train_s, 1), test_s=round(test_s, 1),
                      threads=self.threads, jobs=self.jobs)
        with open(result_path, 'w') as f:
            json.dump(result, f, indent=1)
        return result

    # ---------------------------------------------------------------------------------------
    # the whole chain
    # ---------------------------------------------------------------------------------------
    def run(self) -> Dict:
        from mmrm.datasets import canvas_dataset_ready
        if not canvas_dataset_ready(self.data_root):
            raise FileNotFoundError(
                f'no canvas dataset in {self.data_root}: compose it with `make canvases` (or '
                'python tools/dataset_converters/fashion_mnist_canvases.py --out '
                f'{self.data_root})')
        if any(m not in ('scratch', *self.pretrained) for m in self.methods):
            from mmrm.datasets import load_fashion_mnist
            for split in ('train', 'val'):  # FashionMNISTMissing says to run `make data`
                load_fashion_mnist(self.fashion_mnist, split)
        chain_start = time.time()
        backbones: Dict[str, Optional[str]] = {'scratch': None}
        pretrain_records = {}
        for method in self.methods:
            if method == 'scratch':
                continue
            pretrain_records[method] = record = self.pretrain(method)
            self.check_keys(method, record['backbone'])
            backbones[method] = record['backbone']

        # longest runs first, so that parallel jobs end together
        by_cost = sorted(self.models, key=lambda m: -DOWNSTREAM_MODELS[m].minutes)
        todo = [(model, method, seed) for seed in self.seeds for method in self.methods
                for model in by_cost]
        done: List[Dict] = []

        def one(job):
            model, method, seed = job
            tag = f'{model} {method} seed {seed}'
            cached = osp.isfile(osp.join(self.run_dir(*job), 'result.json'))
            if not cached:
                self.log(f'[run] {tag}: fine-tuning {DOWNSTREAM_MODELS[model].config} '
                         f'(log {self.run_dir(*job)}/train.log)')
            result = self.finetune(model, method, seed, backbones[method])
            with self._lock:
                done.append(result)
                if not cached:
                    self._durations.setdefault(model, []).append(
                        result['train_s'] + result['test_s'])
                scores = ', '.join(f'{k} {v:.2f}' for k, v in result['scores'].items())
                took = 'done before' if cached else (f'train {_fmt_time(result["train_s"])}, '
                                                     f'test {_fmt_time(result["test_s"])}')
                left = [j for j in todo if not osp.isfile(
                    osp.join(self.run_dir(*j), 'result.json'))]
                self.log(f'[{len(done)}/{len(todo)}] {tag}: {scores} ({took}); elapsed '
                         f'{_fmt_time(time.time() - chain_start)}, ETA {self._eta(left)}')
            return result

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            results = list(pool.map(one, todo))
        return self._write(results, pretrain_records, wall_s=time.time() - chain_start)

    def report(self) -> Dict:
        """Tabulate the finished runs of ``methods`` x ``models`` x ``seeds`` found under
        ``work_dir`` (e.g. chains run in parts), running nothing; missing runs are named."""
        results, missing = [], []
        for seed in self.seeds:
            for method in self.methods:
                for model in self.models:
                    path = osp.join(self.run_dir(model, method, seed), 'result.json')
                    if osp.isfile(path):
                        with open(path) as f:
                            results.append(json.load(f))
                    else:
                        missing.append(f'{model} {method} seed {seed}')
        if missing:
            self.log(f'[report] not run (left out of the table): {", ".join(missing)}')
        if not results:
            raise RuntimeError(f'no finished run under {self.work_dir}')
        pretrain_records = {}
        for method in self.methods:
            path = osp.join(self.pretrain_dir(method), 'pretrain.json')
            if method != 'scratch' and osp.isfile(path):
                with open(path) as f:
                    pretrain_records[method] = json.load(f)
        return self._write(results, pretrain_records, wall_s=None)

    def _write(self, results: List[Dict], pretrain_records: Dict,
               wall_s: Optional[float]) -> Dict:
        """Write ``results.json`` and ``results.md`` and print the table."""
        summary = summarize(results)
        out = dict(
            meta=dict(cpu=cpu_model(), threads=self.threads, jobs=self.jobs,
                      python=platform.python_version(), date=time.strftime('%Y-%m-%d'),
                      commit=_git_commit(), data_root=self.data_root,
                      canvas=_canvas_meta(self.data_root), seeds=self.seeds,
                      pretrain_seed=self.pretrain_seed,
                      wall_s=None if wall_s is None else round(wall_s, 1)),
            pretrain=pretrain_records, runs=results, summary=summary)
        with open(osp.join(self.work_dir, 'results.json'), 'w') as f:
            json.dump(out, f, indent=1)
        table = markdown_table(out)
        with open(osp.join(self.work_dir, 'results.md'), 'w') as f:
            f.write(table)
        self.log('\n' + table)
        self.log(f'metrics of every run: {osp.join(self.work_dir, "results.json")}')
        return out

    def _eta(self, left: List[Tuple[str, str, int]]) -> str:
        if not left:
            return '0:00:00'
        # measured runs of a model, else its rough cost scaled by what was measured so far
        measured = {m: statistics.mean(ts) for m, ts in self._durations.items() if ts}
        scale = (statistics.mean(measured[m] / (60 * DOWNSTREAM_MODELS[m].minutes)
                                 for m in measured) if measured else 1.)
        total = sum(measured.get(m, 60 * DOWNSTREAM_MODELS[m].minutes * scale)
                    for m, _, _ in left)
        return _fmt_time(total / self.jobs)


def _git_commit() -> Optional[str]:
    try:
        return subprocess.check_output(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO_ROOT,
                                       text=True, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _coco_results_empty(log_file: str) -> bool:
    """Whether mmdet's CocoMetric logged that no detection was kept on the whole set."""
    with open(log_file, errors='replace') as f:
        return any('The testing results of the whole dataset is empty' in line for line in f)


def _canvas_meta(root: str) -> Optional[Dict]:
    try:
        with open(osp.join(root, 'meta.json')) as f:
            meta = json.load(f)
        return dict(options=meta['options'], counts=meta['counts'], instances=meta['instances'])
    except (OSError, KeyError, ValueError):
        return None


def summarize(results: Sequence[Dict]) -> Dict:
    """``{model: {method: {column: {mean, std, n, values}, 'seconds': mean}}}``; std is the
    sample standard deviation over seeds (0 for one seed)."""
    out: Dict = {}
    for r in results:
        out.setdefault(r['model'], {}).setdefault(r['method'], []).append(r)
    summary: Dict = {}
    for model, per_method in out.items():
        for method, runs in per_method.items():
            entry = {}
            for column in runs[0]['scores']:
                values = [r['scores'][column] for r in sorted(runs, key=lambda r: r['seed'])]
                entry[column] = dict(mean=round(statistics.mean(values), 2),
                                     std=round(statistics.stdev(values), 2)
                                     if len(values) > 1 else 0.,
                                     n=len(values), values=values)
            entry['seconds'] = round(statistics.mean(r['train_s'] + r['test_s'] for r in runs), 1)
            summary.setdefault(model, {})[method] = entry
    return summary


def markdown_table(out: Dict) -> str:
    """The transfer table: one row per pretraining method, one column per model metric
    (mean +- std over seeds), then the fine-tuning time per model and the paper's numbers."""
    summary = out['summary']
    models = [m for m in DOWNSTREAM_MODELS if m in summary]
    methods = []
    for m in models:
        methods += [k for k in summary[m] if k not in methods]
    columns = [(m, c) for m in models for c, _, _ in DOWNSTREAM_MODELS[m].metrics]
    head = [f'{DOWNSTREAM_MODELS[m].title} {c}' for m, c in columns]
    lines = ['| pretraining | ' + ' | '.join(head) + ' |',
             '| --- | ' + ' | '.join('---' for _ in head) + ' |']
    seeds = sorted({r['seed'] for r in out['runs']})
    for method in methods:
        cells = []
        for m, c in columns:
            e = summary[m].get(method, {}).get(c)
            cell = '' if e is None else f'{e["mean"]:.2f} ± {e["std"]:.2f}' if e['n'] > 1 \
                else f'{e["mean"]:.2f}'
            if e is not None and e['n'] != len(seeds):  # fewer seeds than the table's
                cell += f' ({e["n"]} seed{"s" if e["n"] > 1 else ""})'
            cells.append(cell)
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    meta = out.get('meta', {})
    lines += ['', f'Seeds: {", ".join(map(str, seeds))} (mean ± sample std where more than one). '
              f'CPU: {meta.get("cpu", "?")}, {meta.get("threads", "?")} torch threads per run, '
              f'{meta.get("jobs", "?")} run(s) at a time.', '',
              '| model | ' + ' | '.join(DOWNSTREAM_MODELS[m].title for m in models) + ' |',
              '| --- | ' + ' | '.join('---' for _ in models) + ' |',
              '| fine-tune + test, mean per run | ' + ' | '.join(
                  _fmt_time(statistics.mean(e['seconds'] for e in summary[m].values()))
                  for m in models) + ' |', '',
              'Paper (Tables 7-9, ResNet-50 pretrained on ImageNet, COCO / ADE20K):', '',
              '| pretraining | ' + ' | '.join(head) + ' |',
              '| --- | ' + ' | '.join('---' for _ in head) + ' |']
    for i, method in enumerate(PAPER_METHODS):
        lines.append(f'| {method} | ' + ' | '.join(
            f'{DOWNSTREAM_MODELS[m].paper[c][i]:.2f}' for m, c in columns) + ' |')
    return '\n'.join(lines) + '\n'
