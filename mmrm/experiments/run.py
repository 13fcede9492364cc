"""One keyed run of the run cache: its folder, its attempts, its record.

A run lives in its own folder, ``<root>/<stem>-<8 hex digits of the key>``, so runs of
different keys never share a folder, a backbone file or a result:

* ``result.json``: written once the run finished, atomically, with the key, what the run
  returned, the wall time summed over all attempts, the git commit, the library versions, the
  threads and the CPU model. A result file that does not parse (a truncated write of an older
  tool) or holds another key is not a finished run: it runs again.
* ``attempt-N.log``: the output of the N-th attempt (an interrupted run resumes in attempt N+1);
  ``attempts.json``: start and duration of each attempt.
"""
import contextlib
import os
import os.path as osp
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from mmrm.utils.machine import cpu_model

from .keys import RunKey
from .records import REPO_ROOT, git_commit, library_versions, read_json, write_json_atomic

__all__ = ['RESULT', 'ATTEMPTS', 'LOCK', 'Run', 'RunContext', 'tool_env', 'fmt_time']

RESULT = 'result.json'
ATTEMPTS = 'attempts.json'
#: the lock file one process holds while it runs a key
LOCK = '.lock'


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
        """Run one attempt and write the result record atomically; returns the record.

        One process at a time runs a key: the attempt holds an exclusive lock on the folder's
        ``.lock`` file (``fcntl.flock``: released by the kernel when its process dies, so a
        killed run leaves no stale lock). A second process started on the same key waits
        for the lock and then takes the record the first one wrote instead of training
        again (or runs the key itself if the first one failed)."""
        os.makedirs(self.folder, exist_ok=True)
        with _key_lock(self, echo):
            record = self.finished()
            if record is not None:  # another process finished it while this one waited
                return record
            return self._attempt(echo)

    def _attempt(self, echo: Optional[Callable[[str], None]]) -> Dict:
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


@contextlib.contextmanager
def _key_lock(run: Run, echo: Optional[Callable[[str], None]]):
    """Hold ``run``'s lock (see :meth:`Run.execute`), saying so when another process has it."""
    import fcntl
    path = osp.join(run.folder, LOCK)
    with open(path, 'a+') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or 'another process'
            (echo or print)(f'[cache] {run.name}: {holder} is running this key; waiting '
                            'for it to finish')
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f'pid {os.getpid()} on {socket.gethostname()}\n')
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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
