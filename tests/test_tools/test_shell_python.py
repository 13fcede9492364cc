"""Which interpreter the shell tools run (``tools/python.sh``): ``$PYTHON`` if set, else the
repository's ``.venv/bin/python`` if it exists, else ``python`` on PATH; and every shell tool
hands its work to that interpreter (stand-ins record the command lines, nothing trains)."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.utils import REPO_ROOT

SHELL_TOOLS = ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh', 'slurm_test.sh')


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _recorder(path: Path, log: Path) -> Path:
    """A stand-in program that appends its own name and arguments to ``log``."""
    return _executable(path, f'#!/bin/sh\necho "$0 $*" >> {log}\n')


def _repo_copy(tmp_path: Path, with_venv: bool) -> Path:
    repo = tmp_path / ('with_venv' if with_venv else 'no_venv')
    (repo / 'tools').mkdir(parents=True)
    for name in ('python.sh', ) + SHELL_TOOLS:
        shutil.copy(REPO_ROOT / 'tools' / name, repo / 'tools' / name)
    if with_venv:
        _recorder(repo / '.venv' / 'bin' / 'python', tmp_path / 'venv.log')
    return repo


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV')}
    env['PATH'] = '/usr/bin:/bin'
    env.update(extra)
    return env


@pytest.mark.parametrize('with_venv, python, expect', [
    (True, None, '{repo}/.venv/bin/python'),
    (False, None, 'python'),
    (True, '/opt/conda/bin/python', '/opt/conda/bin/python'),
    (False, '/opt/conda/bin/python', '/opt/conda/bin/python'),
])
def test_python_sh_choice(tmp_path, with_venv, python, expect):
    repo = _repo_copy(tmp_path, with_venv)
    env = _clean_env(**({'PYTHON': python} if python else {}))
    out = subprocess.run(['bash', '-c', f'source {repo}/tools/python.sh; echo "$PYTHON"'],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == expect.format(repo=repo)


def test_every_shell_tool_runs_the_venv_python_without_activation(tmp_path):
    repo = _repo_copy(tmp_path, with_venv=True)
    venv_log = tmp_path / 'venv.log'
    srun_log = tmp_path / 'srun.log'
    bin_dir = tmp_path / 'bin'
    _recorder(bin_dir / 'srun', srun_log)
    # a `python` on PATH that must NOT be used
    _recorder(bin_dir / 'python', tmp_path / 'wrong.log')
    env = _clean_env(PATH=f'{bin_dir}:/usr/bin:/bin')
    runs = {
        'dist_train.sh': ['cfg.py', '2', '--amp'],
        'dist_test.sh': ['cfg.py', 'ck.pth', '2'],
        'slurm_train.sh': ['part', 'job', 'cfg.py', 'wd'],
        'slurm_test.sh': ['part', 'job', 'cfg.py', 'ck.pth'],
    }
    for name, args in runs.items():
        subprocess.run(['bash', str(repo / 'tools' / name), *args], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, check=True)
    venv = f'{repo}/.venv/bin/python'
    calls = venv_log.read_text().splitlines()
    # dist_*.sh first check that this environment can run the config (mmrm/utils/stack.py),
    # with the same interpreter, then start the ranks
    checks = [c for c in calls if c.endswith('/mmrm/utils/stack.py cfg.py')]
    assert checks == [f'{venv} {repo}/mmrm/utils/stack.py cfg.py'] * 2
    dist = [c for c in calls if c not in checks]
    assert dist[0].startswith(f'{venv} -m torch.distributed.run ')
    assert dist[0].endswith(f'{repo}/tools/train.py cfg.py --launcher pytorch --amp')
    assert dist[1].endswith(f'{repo}/tools/test.py cfg.py ck.pth --launcher pytorch')
    slurm = srun_log.read_text().splitlines()
    assert f'{venv} -u {repo}/tools/train.py cfg.py --work-dir=wd --launcher=slurm' in slurm[0]
    assert f'{venv} -u {repo}/tools/test.py cfg.py ck.pth --launcher=slurm' in slurm[1]
    assert not (tmp_path / 'wrong.log').exists()
