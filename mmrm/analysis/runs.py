"""One launcher and run cache for every experiment tool (``tools/downstream.py``,
``tools/sweep.py``).

A run is its key (DESIGN.md §6): the resolved config, the ``--cfg-options`` that shape it, the
data it reads, the sha256 of every checkpoint it loads and its seed. A run lives in its own
folder, ``<root>/<stem>-<8 hex digits of the key>``, so runs of different keys never share a
folder, a backbone file or a result:

* ``result.json``: written once the run finished, atomically (tmp file + ``os.replace``), with
  the key, what the run returned, the wall time summed over all attempts, the git commit, the
  library versions, the threads and the CPU model. A result file that does not parse (a
  truncated write of an older tool) or holds another key is not a finished run: it runs again.
* ``attempt-N.log``: the output of the N-th attempt (an interrupted run resumes in attempt N+1);
  ``attempts.json``: start and duration of each attempt.

:class:`Launcher` hands runs to `submitit <https://github.com/facebookincubator/submitit>`_: a
``submitit.LocalExecutor`` (``launcher='local'``: one process per run, ``jobs`` at a time), a
``submitit.SlurmExecutor`` (``launcher='slurm'``: one sbatch job per run) or, for tests and
direct calls, the calling process (``launcher='inline'``). It skips finished runs, echoes the
progress lines of the runs' tools and prints one line per finished run with an ETA.
"""
import argparse
import contextlib
import hashlib
import json
import os
import os.path as osp
import re
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmrm.experiments.stats import mean_std, paired_t
from mmrm.utils.machine import cpu_model

__all__ = [
    'REPO_ROOT', 'KEY_FIELDS', 'RunKey', 'Run', 'RunContext', 'Launcher', 'LAUNCHERS',
    'config_digest', 'file_sha256', 'files_digest', 'read_json', 'write_json_atomic',
    'library_versions', 'git_commit', 'tool_env', 'fmt_time', 'mean_std', 'paired_t', 'add_launcher_args',
    'slurm_parameters', 'launcher_from_args'
]

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the fields of a run's key, in the order a difference is reported
KEY_FIELDS = ('config', 'cfg_options', 'data', 'checkpoints', 'seed')
LAUNCHERS = ('local', 'slurm', 'inline')
RESULT = 'result.json'
ATTEMPTS = 'attempts.json'
#: the libraries whose versions a result records (distribution name: record name)
LIBRARIES = dict(torch='torch', mmengine='mmengine', mmcv='mmcv', mmpretrain='mmpretrain',
                 mmdet='mmdet', mmsegmentation='mmseg', submitit='submitit')


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------
def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` so that a reader sees the old file or the whole new
    one, never a part: a tmp file in the same folder, flushed, then ``os.replace``."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> Optional[Any]:
    """The JSON object in ``path``; None if there is no such file or it does not parse."""
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


_SHA_CACHE: Dict[tuple, str] = {}


def file_sha256(path: str) -> str:
    """sha256 of a file (remembered per path, size and mtime: checkpoints are hashed once)."""
    st = os.stat(path)
    sig = (osp.abspath(path), st.st_size, st.st_mtime_ns)
    if sig not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        _SHA_CACHE[sig] = h.hexdigest()
    return _SHA_CACHE[sig]


def files_digest(folder: str, pattern: str = r'.*') -> Dict[str, str]:
    """``{name: sha256}`` of the files of ``folder`` whose name matches ``pattern``: the
    identity of a dataset wherever it lies."""
    if not osp.isdir(folder):
        return {}
    return {name: file_sha256(osp.join(folder, name)) for name in sorted(os.listdir(folder))
            if re.fullmatch(pattern, name) and osp.isfile(osp.join(folder, name))}


def config_digest(path: str) -> str:
    """sha256 of a config as MMEngine resolves it (its ``_base_`` files merged), so that a
    change in any base changes it while moving or reformatting the files does not."""
    from mmengine.config import Config
    cfg = Config.fromfile(path).to_dict()
    text = json.dumps(cfg, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------
# the key and the record
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunKey:
    """What a run's outcome depends on. ``config``: :func:`config_digest` of its config (or
    None); ``cfg_options``: the ``--cfg-options`` that change the run (not the ones that only
    say where the data or a checkpoint lie: those are ``data`` and ``checkpoints``);
    ``data``: the identity of its data (e.g. the canvas options, the files' sha256);
    ``checkpoints``: ``{role: sha256}`` of every checkpoint it loads; ``seed``."""
    config: Optional[str]
    cfg_options: Sequence[str] = ()
    data: Dict[str, Any] = field(default_factory=dict)
    checkpoints: Dict[str, str] = field(default_factory=dict)
    seed: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        return dict(config=self.config, cfg_options=list(self.cfg_options),
                    data=json.loads(json.dumps(self.data, sort_keys=True)),
                    checkpoints=dict(sorted(self.checkpoints.items())), seed=self.seed)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.digest[:8]

    def differs(self, other: Optional[Dict[str, Any]]) -> List[str]:
        """The key fields in which the recorded key ``other`` (a :meth:`to_dict`) differs."""
        mine = self.to_dict()
        if not isinstance(other, dict):
            return list(KEY_FIELDS)
        return [k for k in KEY_FIELDS if mine[k] != other.get(k)]


_COMMIT: Dict[str, Optional[str]] = {}


def git_commit(root: str = REPO_ROOT) -> Optional[str]:
    """The repository's commit, ``+dirty`` when tracked files differ from it (None outside a
    git checkout)."""
    if root not in _COMMIT:
        try:
            commit = subprocess.check_output(['git', 'rev-parse', '--short', 'HEAD'], cwd=root,
                                             text=True, stderr=subprocess.DEVNULL).strip()
            dirty = subprocess.call(['git', 'diff', '--quiet', 'HEAD'], cwd=root,
                                    stderr=subprocess.DEVNULL) == 1
            _COMMIT[root] = commit + ('+dirty' if dirty else '')
        except (OSError, subprocess.CalledProcessError):
            _COMMIT[root] = None
    return _COMMIT[root]


def library_versions() -> Dict[str, Optional[str]]:
    """Versions of torch and the OpenMMLab libraries (None for one not installed), read from
    the installed distributions without importing them."""
    from importlib import metadata
    out = {'python': '.'.join(map(str, sys.version_info[:3]))}
    for dist, name in LIBRARIES.items():
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def tool_env(threads: Optional[int] = None) -> Dict[str, str]:
    """The environment of a repository tool run by a run: this checkout first on
    ``PYTHONPATH``, ``threads`` OpenMP / MKL threads, unbuffered output (lines as they come)."""
    env = dict(os.environ)
    paths = [REPO_ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                           if p and p != REPO_ROOT]
    env['PYTHONPATH'] = os.pathsep.join(paths)
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    env['PYTHONUNBUFFERED'] = '1'
    return env


def fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


# ------------------------------------------------------------------------------------------
# a run
# ------------------------------------------------------------------------------------------
class RunContext:
    """What a run's body gets: its ``folder``, the ``log`` file of this attempt, ``attempt``
    (1, 2, ...) and :meth:`call` to run a tool into that log."""

    def __init__(self, run: 'Run', attempt: int, echo: Optional[Callable[[str], None]]):
        self.run, self.attempt = run, attempt
        self.folder = run.folder
        self.log = run.attempt_log(attempt)
        self._echo = echo

    def call(self, cmd: Sequence[str], cwd: str = REPO_ROOT) -> None:
        """Run ``cmd`` with :func:`tool_env`, its output appended to this attempt's log; a
        non-zero exit raises with the end of the log."""
        cmd = [str(c) for c in cmd]
        with open(self.log, 'a') as out:
            out.write('$ ' + ' '.join(cmd) + '\n')
            out.flush()
            proc = subprocess.Popen(cmd, cwd=cwd, env=tool_env(self.run.threads),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    bufsize=1)
            for line in proc.stdout:
                out.write(line)
                if self._echo is not None and _progress_line(line):
                    out.flush()
                    self._echo(f'  [{self.run.name}] {_strip_logger(line)}')
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f'{self.run.name}: `{" ".join(cmd)}` failed with exit status '
                               f'{code}; the end of its log ({self.log}):\n{_tail(self.log)}')


def _progress_line(line: str) -> bool:
    return 'eta:' in line or 'Error' in line


def _strip_logger(line: str) -> str:
    return re.sub(r'^\S+ \S+ - mmengine - \w+ - ', '', line.rstrip())[:150]


def _tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


@dataclass
class Run:
    """One keyed run: ``body(ctx)`` does the work and returns a JSON-able dict.

    Args:
        name: how progress lines name it, e.g. ``'atss rm seed 0'``.
        root: the folder its own folder ``<stem>-<key.short>`` is made in.
        stem: the readable part of its folder name, e.g. ``'rm_seed0'``.
        key: what it depends on.
        body: a picklable callable (a module-level function, or a ``functools.partial`` of
            one): it runs in another process for the ``local`` and ``slurm`` launchers.
        threads: OpenMP threads of the tools it calls (:func:`tool_env`).
        group, cost: runs of one group take alike; ``cost`` is the rough seconds of one run,
            which the ETA uses until runs of the group were measured.
        published: where a committed copy of its record may lie (e.g.
            ``results/fashion_mnist/scarce-20/rm_seed3.json``): a copy made with the same key
            is the finished run, so a new machine, whose run cache is empty, reuses the
            published runs instead of training them again.
    """
    name: str
    root: str
    stem: str
    key: RunKey
    body: Callable[[RunContext], Dict]
    threads: Optional[int] = None
    group: str = ''
    cost: float = 60.
    published: Optional[str] = None

    @property
    def folder(self) -> str:
        return osp.join(self.root, f'{self.stem}-{self.key.short}')

    @property
    def result_path(self) -> str:
        return osp.join(self.folder, RESULT)

    def attempt_log(self, attempt: int) -> str:
        return osp.join(self.folder, f'attempt-{attempt}.log')

    def attempts(self) -> List[Dict]:
        return read_json(osp.join(self.folder, ATTEMPTS)) or []

    def next_attempt(self) -> int:
        """The number of the next attempt: one past every recorded attempt and log."""
        logs = os.listdir(self.folder) if osp.isdir(self.folder) else []
        return 1 + max([0] + [a['attempt'] for a in self.attempts()] + [
            int(m.group(1)) for m in map(re.compile(r'attempt-(\d+)\.log').fullmatch, logs)
            if m])

    def finished(self, log: Optional[Callable[[str], None]] = None) -> Optional[Dict]:
        """The record of this run if it finished with this key, else None. A result file that
        does not parse is reported through ``log`` and counts as not finished; one holding
        another key (a hash collision, or a file copied in by hand) is refused. Without a
        result file, a :attr:`published` copy of the same key is the record."""
        if not osp.isfile(self.result_path):
            return self._published()
        record = read_json(self.result_path)
        if not isinstance(record, dict) or 'result' not in record:
            if log is not None:
                log(f'[cache] {self.name}: {self.result_path} is truncated or corrupt; '
                    'running it again')
            return None
        differ = self.key.differs(record.get('key'))
        if differ:
            raise RuntimeError(
                f'{self.name}: {self.result_path} was made with another key (differs in '
                f'{", ".join(differ)}); move that folder away to run this one')
        return record

    def _published(self) -> Optional[Dict]:
        """The :attr:`published` record if it was made with this key. One made with another
        key is refused: running this one would overwrite published evidence."""
        if not self.published or not osp.isfile(self.published):
            return None
        record = read_json(self.published)
        if not isinstance(record, dict) or 'result' not in record:
            raise RuntimeError(f'{self.name}: the published record {self.published} is '
                               'truncated or corrupt; restore it (git checkout) or remove it')
        differ = self.key.differs(record.get('key'))
        if differ:
            raise RuntimeError(
                f'{self.name}: the published record {self.published} was made with another '
                f'key (differs in {", ".join(differ)}); export this run elsewhere or move '
                'that record away')
        return record

    def others(self) -> Dict[str, List[str]]:
        """Finished runs of the same stem under ``root`` with other keys: ``{folder: the key
        fields they differ in}`` (what a user changed since)."""
        out = {}
        if not osp.isdir(self.root):
            return out
        for name in sorted(os.listdir(self.root)):
            folder = osp.join(self.root, name)
            if folder == self.folder or not re.fullmatch(re.escape(self.stem) + r'-[0-9a-f]{8}',
                                                          name):
                continue
            record = read_json(osp.join(folder, RESULT))
            if isinstance(record, dict):
                out[folder] = self.key.differs(record.get('key'))
        return out

    def execute(self, echo: Optional[Callable[[str], None]] = None) -> Dict:
        """Run one attempt and write the result record atomically; returns the record."""
        os.makedirs(self.folder, exist_ok=True)
        attempts = self.attempts()
        attempt = self.next_attempt()
        attempts.append(dict(attempt=attempt, host=socket.gethostname(),
                             start=round(time.time(), 1), seconds=None, status='running'))
        attempts_path = osp.join(self.folder, ATTEMPTS)
        write_json_atomic(attempts_path, attempts)
        start = time.time()
        status = 'failed'
        try:
            result = self.body(RunContext(self, attempt, echo))
            status = 'finished'
        finally:
            attempts[-1].update(seconds=round(time.time() - start, 1), status=status)
            write_json_atomic(attempts_path, attempts)
        record = dict(name=self.name, key=self.key.to_dict(), digest=self.key.digest,
                      result=result, attempts=attempts, wall_s=_wall_time(self, attempts),
                      commit=git_commit(), versions=library_versions(), threads=self.threads,
                      cpu=cpu_model(), host=socket.gethostname(),
                      date=time.strftime('%Y-%m-%d %H:%M:%S'))
        write_json_atomic(self.result_path, record)
        return record


def _wall_time(run: Run, attempts: List[Dict]) -> float:
    """Seconds over all attempts; an attempt killed before it could record its duration
    counts until the last write to its log."""
    total = 0.
    for a in attempts:
        if a.get('seconds') is not None:
            total += a['seconds']
        elif osp.isfile(run.attempt_log(a['attempt'])):
            total += max(0., osp.getmtime(run.attempt_log(a['attempt'])) - a['start'])
    return round(total, 1)


def _execute(run: Run) -> Dict:
    """What a submitit job runs (module level, so that it pickles by reference)."""
    return run.execute()


# ------------------------------------------------------------------------------------------
# the launcher
# ------------------------------------------------------------------------------------------
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
                    records[i] = self._collect(runs[i], job)
                    report(i, cached=False)
        finally:
            for job in active.values():
                job.cancel(check=False)
        return records

    def _starting(self, run: Run) -> int:
        attempt = run.next_attempt()
        self.log(f'[run] {run.name}: into {run.folder} (log attempt-{attempt}.log)')
        return attempt

    def _collect(self, run: Run, job) -> Dict:
        """The record a job wrote; its failure as a RuntimeError with the end of its log."""
        try:
            job.result()
        except Exception as exc:  # submitit's FailedJobError / UncompletedJobError
            attempts = run.attempts()
            log = run.attempt_log(attempts[-1]['attempt']) if attempts else None
            text = str(exc).strip().splitlines()
            raise RuntimeError(
                f'{run.name} failed ({self.launcher} job {job.job_id}): '
                f'{text[-1] if text else type(exc).__name__}\nthe end of its log ({log}):\n'
                f'{_tail(log) if log else ""}') from exc
        record = run.finished(self.log)
        if record is None:
            raise RuntimeError(f'{run.name}: the job {job.job_id} ended without writing '
                               f'{run.result_path}')
        return record

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


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------
def add_launcher_args(parser: argparse.ArgumentParser, jobs: int = 1) -> None:
    """The launcher options every experiment tool shares."""
    group = parser.add_argument_group('launcher')
    group.add_argument('--launcher', choices=LAUNCHERS, default='local',
                       help='local: submitit.LocalExecutor on this machine; slurm: one sbatch '
                       'job per run (submitit.SlurmExecutor); inline: in this process, one '
                       'run after the other (debugging)')
    group.add_argument('--jobs', type=int, default=jobs,
                       help=f'runs at once (default {jobs})')
    group.add_argument('--threads', type=int, default=None,
                       help='OpenMP threads per run (default: cores / jobs)')
    group.add_argument('--partition', default=None, help='slurm: partition')
    group.add_argument('--time-min', type=int, default=24 * 60,
                       help='slurm: time limit of a job in minutes (default one day)')
    group.add_argument('--gpus-per-run', type=int, default=0,
                       help='slurm: GPUs of a job (default 0)')
    group.add_argument('--slurm-option', nargs='+', default=[], metavar='KEY=VALUE',
                       help='slurm: more sbatch options, e.g. qos=high account=lab')


def slurm_parameters(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Dict:
    """The sbatch parameters of :func:`add_launcher_args` options, after checking them
    (``args.threads`` is filled in if it was left to its default)."""
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    slurm: Dict[str, Any] = dict(time=args.time_min, cpus_per_task=args.threads, nodes=1,
                                 ntasks_per_node=1)
    if args.partition:
        slurm['partition'] = args.partition
    if args.gpus_per_run:
        slurm['gpus_per_node'] = args.gpus_per_run
    extra = {}
    for item in args.slurm_option:
        k, sep, v = item.partition('=')
        if not sep or not k:
            parser.error(f'--slurm-option {item!r}: expected KEY=VALUE')
        extra[k] = v
    if extra:
        slurm['additional_parameters'] = extra
    return slurm


def launcher_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
                       folder: str, log: Callable[[str], None] = print) -> Launcher:
    """The :class:`Launcher` of :func:`add_launcher_args` options."""
    slurm = slurm_parameters(parser, args)
    return Launcher(args.launcher, folder=folder, jobs=args.jobs, slurm=slurm, log=log)
