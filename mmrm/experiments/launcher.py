"""The launcher of every experiment tool: runs :class:`~.run.Run` s, ``jobs`` at a time,
skipping the finished ones.

It hands runs to `submitit <https://github.com/facebookincubator/submitit>`_: a
``submitit.LocalExecutor`` (``launcher='local'``: one process per run, ``jobs`` at a time), a
``submitit.SlurmExecutor`` (``launcher='slurm'``: one sbatch job per run) or, for tests and
direct calls, the calling process (``launcher='inline'``). It echoes the progress lines of the
runs' tools and prints one line per finished run with an ETA.
"""
import contextlib
import os
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from .run import Run, _execute, _progress_line, _strip_logger, _tail, fmt_time, tool_env

__all__ = ['LAUNCHERS', 'Launcher']

LAUNCHERS = ('local', 'slurm', 'inline')


class Launcher:
    """Runs :class:`Run` s, ``jobs`` at a time, skipping the finished ones.

    Args:
        launcher: ``'local'`` (``submitit.LocalExecutor``), ``'slurm'``
            (``submitit.SlurmExecutor``, one sbatch job per run) or ``'inline'`` (in this
            process, one after the other: tests and direct calls).
        folder: where submitit keeps its job files (pickles, stdout / stderr of the jobs).
        jobs: runs at once.
        slurm: sbatch parameters of ``submitit.SlurmExecutor.update_parameters`` (e.g.
            ``partition``, ``time`` in minutes, ``gpus_per_node``, ``cpus_per_task``,
            ``additional_parameters``).
        log: where progress lines go.
        poll_s: how often the logs of running jobs are read for progress lines.
    """

    def __init__(self,
                 launcher: str = 'local',
                 folder: Optional[str] = None,
                 jobs: int = 1,
                 slurm: Optional[Dict[str, Any]] = None,
                 log: Callable[[str], None] = print,
                 poll_s: float = 1.):
        if launcher not in LAUNCHERS:
            raise ValueError(f'unknown launcher {launcher!r}; allowed: {", ".join(LAUNCHERS)}')
        if jobs < 1:
            raise ValueError('jobs must be >= 1')
        if launcher != 'inline' and folder is None:
            raise ValueError(f'the {launcher} launcher needs a folder for its job files')
        self.launcher, self.folder, self.jobs = launcher, folder, jobs
        self.slurm = dict(slurm or {})
        self.log, self.poll_s = log, poll_s
        self.durations: Dict[str, List[float]] = {}

    def _executor(self):
        import submitit
        if self.launcher == 'local':
            ex = submitit.LocalExecutor(folder=self.folder)
            ex.update_parameters(timeout_min=self.slurm.get('time', 7 * 24 * 60))
        else:
            ex = submitit.SlurmExecutor(folder=self.folder)
            ex.update_parameters(**self.slurm)
        return ex

    def run(self, runs: Sequence[Run], describe: Callable[[Dict], str] = lambda r: '',
            label: str = '', on_record: Optional[Callable[[Run, Dict], None]] = None
            ) -> List[Dict]:
        """Run what is not finished; the records of all ``runs``, in their order.

        ``describe(record)`` says what a finished run scored in its progress line;
        ``on_record(run, record)`` is called as each run finishes (e.g. to publish its record
        at once, so that a stopped session loses no finished run)."""
        start = time.time()
        records: List[Optional[Dict]] = [None] * len(runs)
        todo = []
        for i, run in enumerate(runs):
            records[i] = run.finished(self.log)
            if records[i] is None:
                todo.append(i)
                for folder, differ in run.others().items():
                    self.log(f'[cache] {run.name}: {folder} holds a run with another key '
                             f'(differs in {", ".join(differ) or "nothing"}); this one runs '
                             f'into {run.folder}')
        done = 0

        def report(i: int, cached: bool) -> None:
            nonlocal done
            done += 1
            record = records[i]
            if not cached:
                self.durations.setdefault(runs[i].group, []).append(record['wall_s'])
                if on_record is not None:
                    on_record(runs[i], record)
            took = 'done before' if cached else f'took {fmt_time(record["wall_s"])}'
            what = describe(record)
            left = [runs[j] for j in todo if records[j] is None]
            self.log(f'[{label}{done}/{len(runs)}] {runs[i].name}: '
                     f'{what + " " if what else ""}({took}); elapsed '
                     f'{fmt_time(time.time() - start)}, ETA {self.eta(left)}')

        for i, run in enumerate(runs):
            if records[i] is not None:
                report(i, cached=True)
        if not todo:
            return records
        if self.launcher == 'inline':
            for i in todo:
                self._starting(runs[i])
                records[i] = runs[i].execute(echo=self.log)
                report(i, cached=False)
            return records
        executor = self._executor()
        pending = list(todo)
        active: Dict[int, Any] = {}
        tails: Dict[int, _LogTail] = {}
        try:
            while pending or active:
                while pending and len(active) < self.jobs:
                    i = pending.pop(0)
                    tails[i] = _LogTail(runs[i], self._starting(runs[i]), self.log)
                    if self.launcher == 'slurm':
                        executor.update_parameters(job_name=runs[i].stem)
                    with _repo_on_pythonpath():  # the job unpickles the run from mmrm
                        active[i] = executor.submit(_execute, runs[i])
                time.sleep(self.poll_s)
                for i in list(active):
                    tails[i].echo()
                    if not active[i].done():
                        continue
                    job = active.pop(i)
                    tails.pop(i).echo()
                    records[i] = _job_record(runs[i], job, self.launcher, self.log)
                    report(i, cached=False)
        finally:
            for job in active.values():
                job.cancel(check=False)
        return records

    def _starting(self, run: Run) -> int:
        attempt = run.next_attempt()
        self.log(f'[run] {run.name}: into {run.folder} (log attempt-{attempt}.log)')
        return attempt

    def eta(self, left: Sequence[Run]) -> str:
        """Time to finish ``left``: the measured mean of a group, else its ``cost`` scaled by
        how measured runs compared with theirs; divided by ``jobs``."""
        if not left:
            return fmt_time(0)
        runs_cost = {r.group: r.cost for r in left}
        measured = {g: statistics.mean(ts) for g, ts in self.durations.items() if ts}
        ratios = [measured[g] / runs_cost[g] for g in measured if runs_cost.get(g)]
        scale = statistics.mean(ratios) if ratios else 1.
        total = sum(measured.get(r.group, r.cost * scale) for r in left)
        return fmt_time(total / self.jobs)


def _job_record(run: Run, job, launcher: str, log: Callable[[str], None]) -> Dict:
    """The record a job wrote; its failure as a RuntimeError with the end of its log."""
    try:
        job.result()
    except Exception as exc:  # submitit's FailedJobError / UncompletedJobError
        attempts = run.attempts()
        path = run.attempt_log(attempts[-1]['attempt']) if attempts else None
        text = str(exc).strip().splitlines()
        raise RuntimeError(
            f'{run.name} failed ({launcher} job {job.job_id}): '
            f'{text[-1] if text else type(exc).__name__}\nthe end of its log ({path}):\n'
            f'{_tail(path) if path else ""}') from exc
    record = run.finished(log)
    if record is None:
        raise RuntimeError(f'{run.name}: the job {job.job_id} ended without writing '
                           f'{run.result_path}')
    return record


@contextlib.contextmanager
def _repo_on_pythonpath():
    """This checkout first on ``PYTHONPATH`` while a job is submitted: a local job's process
    and an sbatch job inherit the environment of the submission."""
    old = os.environ.get('PYTHONPATH')
    os.environ['PYTHONPATH'] = tool_env()['PYTHONPATH']
    try:
        yield
    finally:
        if old is None:
            os.environ.pop('PYTHONPATH')
        else:
            os.environ['PYTHONPATH'] = old


class _LogTail:
    """Echoes the progress lines a job's tools append to its attempt log."""

    def __init__(self, run: Run, attempt: int, log: Callable[[str], None]):
        self.run, self.attempt, self.log = run, attempt, log
        self.offset = 0

    def echo(self) -> None:
        path = self.run.attempt_log(self.attempt)
        try:
            with open(path, errors='replace') as f:
                f.seek(self.offset)
                text = f.read()
        except OSError:
            return
        end = text.rfind('\n') + 1  # whole lines only
        self.offset += len(text[:end].encode())
        for line in text[:end].splitlines():
            if _progress_line(line):
                self.log(f'  [{self.run.name}] {_strip_logger(line)}')
