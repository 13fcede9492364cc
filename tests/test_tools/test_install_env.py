"""The installer's two levels in one venv (``scripts/install_env.sh``, ``scripts/env_stamp.py``).

``make demo`` sets up the ``classification`` level (mmcv built without its compiled ops),
``make install`` / ``make test`` the ``full`` one. The stamp records the level and the mmcv build
(``ops`` / ``noops``): a rerun with nothing changed does nothing, the full level is never taken
as done on a venv whose mmcv lacks its ops, and a classification venv is completed, not redone.
Nothing here installs: the venv is a stand-in ``python`` that runs this interpreter (optionally
seeing the stack as the classification venv has it) and records how it was called.
"""
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils import REPO_ROOT, classification_only_env, tool_env

INSTALL = REPO_ROOT / 'scripts' / 'install_env.sh'


def _load_env_stamp():
    spec = importlib.util.spec_from_file_location('env_stamp', REPO_ROOT / 'scripts/env_stamp.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


env_stamp = _load_env_stamp()
KEY = env_stamp.stamp_key()


def _stamp(level, mmcv, key=KEY):
    return {'key': key, 'level': level, 'mmcv': mmcv, 'torch': '2.14.1'}


@pytest.mark.parametrize('stamp_level, stamp_mmcv, venv_mmcv, asked, up_to_date', [
    # make demo's venv: serves classification, not the full level
    ('classification', 'noops', 'noops', 'classification', True),
    ('classification', 'noops', 'noops', 'full', False),
    # a full venv serves both
    ('full', 'ops', 'ops', 'classification', True),
    ('full', 'ops', 'ops', 'full', True),
    # make demo took the cached ops wheel: still a classification stamp (no mmdet / mmseg yet)
    ('classification', 'ops', 'ops', 'full', False),
    # the mmcv in the venv is not the build the stamp records: install again
    ('full', 'ops', 'noops', 'full', False),
    ('full', 'ops', 'noops', 'classification', False),
    ('classification', 'noops', 'ops', 'classification', False),
    ('full', 'ops', 'broken', 'full', False),
])
def test_stamp_tells_the_two_builds_apart(stamp_level, stamp_mmcv, venv_mmcv, asked, up_to_date):
    reason = env_stamp.why_not_up_to_date(_stamp(stamp_level, stamp_mmcv), asked, KEY, venv_mmcv,
                                          import_modules=False)
    assert (reason is None) == up_to_date, reason
    if not up_to_date:
        assert reason  # a reason the installer prints


def test_stamp_reasons_name_the_cause():
    why = env_stamp.why_not_up_to_date
    assert why({}, 'classification', KEY, 'noops', False) == 'no install stamp'
    assert 'changed' in why(_stamp('full', 'ops', key='0' * 16), 'full', KEY, 'ops', False)
    assert 'classification level' in why(_stamp('classification', 'noops'), 'full', KEY, 'noops',
                                         False)
    assert "records mmcv 'ops'" in why(_stamp('full', 'ops'), 'full', KEY, 'noops', False)
    with pytest.raises(ValueError, match='level must be one of'):
        why(_stamp('full', 'ops'), 'detection', KEY, 'ops', False)


def test_stamp_file_round_trip_and_old_format(tmp_path):
    path = tmp_path / 'stamp'
    assert env_stamp.read_stamp(str(path)) == {}
    env_stamp.write_stamp(str(path), 'classification', KEY, 'noops')
    stamp = env_stamp.read_stamp(str(path))
    assert stamp['level'] == 'classification' and stamp['mmcv'] == 'noops'
    assert stamp['key'] == KEY and stamp['torch']
    path.write_text('0123456789abcdef\n')  # the one-line stamp of the former installer
    assert env_stamp.read_stamp(str(path)) == {'key': '0123456789abcdef', 'level': 'full'}


def test_write_refuses_a_full_stamp_without_ops(tmp_path, monkeypatch):
    monkeypatch.setattr(env_stamp, 'mmcv_build', lambda: 'noops')
    path = tmp_path / 'stamp'
    args = ['--stamp', str(path), '--key', KEY]
    assert env_stamp.main(['write', '--level', 'full'] + args) == 1 and not path.exists()
    assert env_stamp.main(['write', '--level', 'classification'] + args) == 0
    assert env_stamp.read_stamp(str(path))['mmcv'] == 'noops'


def test_key_covers_the_installer_and_every_requirements_file(tmp_path):
    shutil.copytree(REPO_ROOT / 'requirements', tmp_path / 'requirements')
    for rel in env_stamp.KEY_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / rel, tmp_path / rel)
    key = env_stamp.stamp_key(str(tmp_path))
    assert key == KEY and len(key) == 16
    with open(tmp_path / 'requirements' / 'downstream.txt', 'a') as f:
        f.write('someotherpackage\n')
    changed = env_stamp.stamp_key(str(tmp_path))
    assert changed != key
    (tmp_path / 'requirements' / 'new.txt').write_text('x\n')  # a new file counts too
    assert env_stamp.stamp_key(str(tmp_path)) not in (key, changed)


def _fake_mmcv(root: Path, ext: bool):
    pkg = root / 'mmcv'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text("__version__ = '2.1.0'\n")
    if ext:  # an _ext that does not load (built for another torch, say)
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        (pkg / f'_ext{suffix}').write_bytes(b'not a shared object')
    return str(root)


def test_mmcv_build_detection(tmp_path):
    assert env_stamp.mmcv_build() == 'ops'  # the environment the tests run in is the full one
    script = str(REPO_ROOT / 'scripts/env_stamp.py')

    def build(pythonpath):  # -S: no site-packages, only the fake mmcv (or none) is visible
        env = dict(os.environ, PYTHONPATH=pythonpath)
        return subprocess.run([sys.executable, '-S', script, 'mmcv'], env=env, text=True,
                              capture_output=True, check=True).stdout.strip()

    assert build(_fake_mmcv(tmp_path / 'noops', ext=False)) == 'noops'
    assert build(_fake_mmcv(tmp_path / 'broken', ext=True)) == 'broken'
    assert build(str(tmp_path / 'empty')) == 'none'


def _stand_in_venv(tmp_path: Path, env: dict) -> Path:
    """A venv whose ``python`` runs this interpreter with ``env``'s PYTHONPATH and appends its
    arguments to ``calls.log``."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text('#!/bin/sh\n'
                      f'echo "$*" >> {tmp_path / "calls.log"}\n'
                      f'PYTHONPATH="{env["PYTHONPATH"]}" exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return venv


def _install(venv: Path, *args, tmp_path: Path):
    env = tool_env(VENV=str(venv), MMRM_CACHE=str(tmp_path / 'cache'))
    return subprocess.run(['bash', str(INSTALL), *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.timeout(600)
def test_classification_venv_reruns_in_seconds_and_is_not_taken_for_full(tmp_path):
    """The venv of ``make demo``: a rerun of the classification level runs no pip; the full
    level (``make install`` / ``make test``) is not taken as done and says why."""
    venv = _stand_in_venv(tmp_path, classification_only_env(tmp_path / 'site'))
    (venv / '.mmrm-installed').write_text('key=%s\nlevel=classification\nmmcv=noops\n' % KEY)
    run = _install(venv, 'classification', tmp_path=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'environment up to date for classification' in run.stdout
    assert 'mmcv=noops' in run.stdout
    calls = (tmp_path / 'calls.log').read_text()
    assert '-m pip' not in calls and '-m venv' not in calls  # nothing installed
    check = _install(venv, '--check', 'full', tmp_path=tmp_path)
    assert check.returncode == 1
    assert 'holds the classification level' in check.stdout
    # a stamp that claims the full level while mmcv has no ops is not believed
    (venv / '.mmrm-installed').write_text('key=%s\nlevel=full\nmmcv=ops\n' % KEY)
    check = _install(venv, '--check', 'full', tmp_path=tmp_path)
    assert check.returncode == 1 and "records mmcv 'ops'" in check.stdout
    bad = _install(venv, 'detection', tmp_path=tmp_path)
    assert bad.returncode == 2 and 'usage' in bad.stderr


@pytest.mark.timeout(600)
def test_full_venv_serves_both_levels(tmp_path):
    venv = _stand_in_venv(tmp_path, tool_env())
    (venv / '.mmrm-installed').write_text('key=%s\nlevel=full\nmmcv=ops\n' % KEY)
    for level in ('full', 'classification'):
        check = _install(venv, '--check', level, tmp_path=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
