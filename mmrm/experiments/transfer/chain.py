"""Does RM pretraining transfer? The downstream chain of the paper (Tables 7-9), offline.

:class:`TransferChain` runs the stages of a :class:`~.plan.TransferPlan`: the pretrainings
(:mod:`.pretrain`: train or take a checkpoint, convert, check the keys), then the fine-tunings
(:mod:`.finetune`: train, test on the test and val canvases), each a keyed run of the run cache
(:mod:`mmrm.experiments.run`: its own folder, a log per attempt, an atomic record) handed to
submitit by :class:`~mmrm.experiments.launcher.Launcher`. Finished runs of the same key are
found on disk and skipped, an interrupted one resumes from its last checkpoint. The table is a
function of the fine-tuning records alone (:mod:`.report`); :meth:`TransferChain.export` copies
them to a folder (``results/transfer/``) from which :func:`~.records.report_records`
regenerates the same table, bit for bit. The command line is ``tools/downstream.py``.
"""
import os.path as osp
import platform
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmrm.utils.machine import cpu_model

from ..launcher import Launcher
from ..records import git_commit
from ..run import Run
from .finetune import finetune_run
from .models import DOWNSTREAM_MODELS, check_split
from .plan import SCRATCH_METHODS, TransferPlan
from .pretrain import check_keys, pretrain_run
from .records import canvas_meta, export_records, pretrain_label, run_result, write_results

__all__ = ['TransferChain', 'collect_finished']


class TransferChain:
    """Runs the chain for ``methods`` x ``models`` x ``pretrain_seeds`` x ``seeds`` under
    ``work_dir``.

    Args:
        work_dir: everything is written below it (``pretrain/<method>_seed<p>-<key>/``,
            ``<model>/<method>_pre<p>_seed<s>-<key>/`` (``<method>_seed<s>-<key>`` for the
            scratch methods), ``results.json``, ``results.md``).
        methods, models, seeds, pretrain_seeds, pairing, pretrained, finetune_options: the
            plan (:class:`~.plan.TransferPlan`).
        data_root: the canvas dataset (``tools/dataset_converters/fashion_mnist_canvases.py``).
        fashion_mnist: the Fashion-MNIST IDX files (``make data``).
        split: the canvases whose scores the progress lines and the printed table show:
            ``test`` (the reported table, ``results.md``) or ``val`` (for choices:
            ``results_val.md``; no test score is shown). The records hold both.
        threads: torch threads of each fine-tuning; jobs: fine-tunings run at once (a
            pretraining runs alone with ``threads * jobs`` threads).
        pretrain_options: extra ``--cfg-options`` of the pretraining runs.
        launcher, slurm: how runs are started (:class:`mmrm.experiments.launcher.Launcher`).
        log: where progress lines go.
    """

    def __init__(self, work_dir: str, methods: Sequence[str], models: Sequence[str],
                 seeds: Sequence[int], data_root: str = 'data/fashion_mnist_canvas',
                 fashion_mnist: str = 'data/fashion_mnist',
                 pretrained: Optional[Dict[str, str]] = None,
                 pretrain_seeds: Union[int, Sequence[int]] = (0, ), pairing: str = 'cross',
                 split: str = 'test', threads: int = 2, jobs: int = 1,
                 pretrain_options: Sequence[str] = (), finetune_options=(),
                 launcher: str = 'local', slurm: Optional[Dict] = None,
                 python: str = sys.executable, log: Callable[[str], None] = print):
        self.plan = TransferPlan(methods, models, seeds, pretrain_seeds, pairing, pretrained,
                                 finetune_options)
        check_split(split)
        self.work_dir, self.split = osp.abspath(work_dir), split
        self.data_root, self.fashion_mnist = osp.abspath(data_root), osp.abspath(fashion_mnist)
        self.threads, self.jobs = threads, jobs
        self.pretrain_options = list(pretrain_options)
        self.python, self.log = python, log
        folder = osp.join(self.work_dir, '.submitit')
        # a pretraining runs alone (the fine-tunings wait for it), with all the jobs' threads
        pretrain_slurm = dict(slurm or {})
        if 'cpus_per_task' in pretrain_slurm:
            pretrain_slurm['cpus_per_task'] = threads * jobs
        self.pretrain_launcher = Launcher(launcher, folder, jobs=1, slurm=pretrain_slurm,
                                          log=log)
        self.launcher = Launcher(launcher, folder, jobs=jobs, slurm=slurm, log=log)

    def pretrain_run(self, method: str, seed: Optional[int] = None) -> Run:
        """The pretraining of ``method`` with ``seed`` (default: the first pretraining seed),
        or the conversion of its given checkpoint."""
        seed = self.plan.pretrain_seeds[0] if seed is None else seed
        return pretrain_run(method, seed, self.work_dir, self.fashion_mnist,
                            self.plan.pretrained.get(method), self.pretrain_options,
                            self.python, self.threads * self.jobs)

    def finetune_run(self, model_name: str, method: str, seed: int, backbone: Optional[str],
                     pretrain_seed: Optional[int] = None) -> Run:
        """The fine-tuning and test of one model from ``backbone`` (None: scratch)."""
        return finetune_run(self.plan, model_name, method, seed, backbone, pretrain_seed,
                            self.work_dir, self.data_root, self.python, self.threads, self.jobs)

    def finetune(self, model_name: str, method: str, seed: int, backbone: Optional[str],
                 pretrain_seed: Optional[int] = None) -> Dict:
        """Fine-tune and evaluate one model (or find it done); returns its result."""
        run = self.finetune_run(model_name, method, seed, backbone, pretrain_seed)
        return self._result(self.launcher.run([run])[0])

    def _result(self, record: Dict) -> Dict:
        for note in record['result'].get('notes', ()):
            self.log(f'[note] {note}')
        return run_result(record)

    def check_inputs(self) -> None:
        """Everything the chain needs, before anything starts: MMDetection, MMSegmentation
        and mmcv's ops, the canvases, Fashion-MNIST (for a method to pretrain)."""
        from mmrm.datasets import canvas_dataset_ready, load_fashion_mnist
        from mmrm.utils.stack import require
        require('the downstream chain (detection and segmentation fine-tunings)')
        if not canvas_dataset_ready(self.data_root):
            raise FileNotFoundError(
                f'no canvas dataset (of the current format: train / val / test splits) in '
                f'{self.data_root}: compose it with `make canvases` (or '
                'python tools/dataset_converters/fashion_mnist_canvases.py --out '
                f'{self.data_root})')
        if any(m not in (*SCRATCH_METHODS, *self.plan.pretrained) for m in self.plan.methods):
            for split in ('train', 'test'):  # FashionMNISTMissing says to run `make data`
                load_fashion_mnist(self.fashion_mnist, split)

    def check_keys(self, method: str, backbone: str) -> None:
        """Every downstream config must load ``backbone`` with no key or shape mismatch."""
        check_keys(self.plan.models, method, backbone, self.log)

    def _finetune_runs(self, backbones: Dict[Tuple[str, Optional[int]], Optional[str]]
                       ) -> List[Run]:
        # longest runs first, so that parallel jobs end together
        by_cost = sorted(self.plan.models, key=lambda m: -DOWNSTREAM_MODELS[m].minutes)
        return [self.finetune_run(model, method, seed, backbones[(method, p)], p)
                for model, method, p, seed in self.plan.finetunings(by_cost)]

    def run(self) -> Dict:
        """Pretrain, check, fine-tune and test what is not finished; write the table."""
        self.check_inputs()
        chain_start = time.time()
        pretrainings = self.plan.pretrainings()
        records = self.pretrain_launcher.run(
            [self.pretrain_run(m, p) for m, p in pretrainings],
            describe=lambda r: f'top-1 {r["result"]["top1"]}', label='pretrain ')
        backbones: Dict[Tuple[str, Optional[int]], Optional[str]] = {
            (m, None): None for m in self.plan.methods if m in SCRATCH_METHODS}
        pretrain_records = {}
        for (method, p), record in zip(pretrainings, records):
            self.check_keys(method, record['result']['backbone'])
            backbones[(method, p)] = record['result']['backbone']
            pretrain_records[pretrain_label(method, p)] = _pretrain_entry(record)

        def describe(record: Dict) -> str:
            scores = record['result']['scores' if self.split == 'test' else 'val_scores']
            return ', '.join(f'{self.split} {k} {v:.2f}' for k, v in scores.items())
        records = self.launcher.run(self._finetune_runs(backbones), describe=describe)
        results = [self._result(r) for r in records]
        return self._write(results, pretrain_records, time.time() - chain_start)

    def _write(self, results: List[Dict], pretrain_records: Dict,
               wall_s: Optional[float] = None) -> Dict:
        plan = self.plan
        meta = dict(cpu=cpu_model(), threads=self.threads, jobs=self.jobs,
                    python=platform.python_version(), date=time.strftime('%Y-%m-%d'),
                    commit=git_commit(), data_root=self.data_root,
                    canvas=canvas_meta(self.data_root), seeds=plan.seeds,
                    pretrain_seeds=plan.pretrain_seeds, pairing=plan.pairing, split='test',
                    wall_s=None if wall_s is None else round(wall_s, 1))
        return write_results(self.work_dir, self.split, meta, results, pretrain_records,
                             self.log)

    def report(self) -> Dict:
        """Tabulate the finished runs of this chain's keys found under ``work_dir`` (e.g.
        chains run in parts), running nothing; missing runs are named."""
        pretrain, finetunes = collect_finished(self)
        results = [self._result(record) for _, record in finetunes]
        return self._write(results, {k: _pretrain_entry(r) for k, (_, r) in pretrain.items()})

    def export(self, dest: str) -> List[str]:
        """Copy the records behind the table (every finished pretraining and fine-tuning of
        this chain's keys) to ``dest`` as ``<folder relative to work_dir>.json``
        (``pretrain/rm_seed0-<key>.json``, ``atss/rm_pre0_seed0-<key>.json``) and write the
        table made from them alone (:func:`~.records.export_records`)."""
        pretrain, finetunes = collect_finished(self)
        runs = [run for run, _ in pretrain.values()] + [run for run, _ in finetunes]
        return export_records({osp.relpath(run.folder, self.work_dir): run.result_path
                               for run in runs}, dest, log=self.log)


def _pretrain_entry(record: Dict) -> Dict:
    return dict(record['result'], wall_s=record['wall_s'], key=record['digest'])


def collect_finished(chain: 'TransferChain'
                     ) -> Tuple[Dict[str, Tuple[Run, Dict]], List[Tuple[Run, Dict]]]:
    """The finished runs of ``chain``'s keys under its ``work_dir``, running nothing:
    ``({label: (run, pretraining record)}, [(run, fine-tuning record)])``; the missing ones
    are named in the log."""
    plan, log = chain.plan, chain.log
    pretrain, backbones, missing = {}, {}, []
    for method in plan.methods:
        for p in plan.used_seeds(method):
            if method in SCRATCH_METHODS:
                backbones[(method, p)] = None
                continue
            run = chain.pretrain_run(method, p)
            record = run.finished(log)
            if record is None:
                missing.append(run.name)
            else:
                pretrain[pretrain_label(method, p)] = (run, record)
                backbones[(method, p)] = record['result']['backbone']
    finetunes = []
    for model, method, p, seed in plan.finetunings():
        if (method, p) not in backbones:
            missing.append(f'{model} {method}' + ('' if p is None else f' pre {p}') +
                           f' seed {seed}')
            continue
        run = chain.finetune_run(model, method, seed, backbones[(method, p)], p)
        record = run.finished(log)
        if record is None:
            missing.append(run.name)
        else:
            finetunes.append((run, record))
    if missing:
        log(f'[report] not run (left out of the table): {", ".join(missing)}')
    if not finetunes:
        raise RuntimeError(f'no finished run under {chain.work_dir}')
    return pretrain, finetunes
