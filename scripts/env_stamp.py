"""The stamp of the environment that ``scripts/install_env.sh`` built, and the checks behind it.

Run by the venv's python (standard library only: it runs before mmrm is installed)::

    python scripts/env_stamp.py key                               # what decides an install
    python scripts/env_stamp.py mmcv                              # ops | noops | broken | none
    python scripts/env_stamp.py check --stamp S --level L --key K # exit 0: up to date
    python scripts/env_stamp.py write --stamp S --level L --key K

Two levels, one venv:

* ``classification`` (``make demo``): torch, torchvision, mmengine, mmcv 2.1.0 (built without
  its compiled ops is enough), mmpretrain, mmrm;
* ``full`` (``make install`` / ``make test``): the classification level plus mmcv's compiled
  ops, MMDetection, MMSegmentation and the test tools.

The stamp (``KEY=VALUE`` lines) records the level, the key of the files that decide what gets
installed, and the mmcv build found in the venv when it was written (``ops`` or ``noops``).
``check`` passes when the key matches, the stamp's level covers the level asked for (full
covers classification), the mmcv build in the venv is still the one recorded, and the level's
modules import. Otherwise it prints the reason on one line and exits 1.
"""
import argparse
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LEVELS = ('classification', 'full')
MODULES = {
    'classification': ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmpretrain', 'mmrm'),
    'full': ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmcv.ops', 'mmpretrain', 'mmdet',
             'mmseg', 'mmrm', 'pytest'),
}
#: the mmcv builds each level accepts
ACCEPTED_MMCV = {'classification': ('ops', 'noops'), 'full': ('ops', )}
#: files whose content decides what an install does
KEY_FILES = ('scripts/install_env.sh', 'scripts/env_stamp.py', 'setup.py')


def stamp_key(root: str = ROOT) -> str:
    """16 hex digits of the sha256 over the installer, this file, setup.py and
    requirements/*.txt (sorted): any change to them makes the next install run again."""
    req = osp.join(root, 'requirements')
    files = list(KEY_FILES) + sorted(
        osp.join('requirements', f) for f in os.listdir(req) if f.endswith('.txt'))
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b'\0')
        with open(osp.join(root, rel), 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def _ext_file(package_dir: str):
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = osp.join(package_dir, '_ext' + suffix)
        if osp.isfile(path):
            return path
    return None


def mmcv_build() -> str:
    """Which mmcv is importable: ``ops`` (its compiled ops load), ``noops`` (mmcv without
    ``mmcv._ext``: the build made with ``MMCV_WITH_OPS=0``), ``broken`` (``_ext`` is there but
    fails to load, e.g. built against another torch) or ``none`` (no mmcv)."""
    if sys.modules.get('mmcv', 0) is None:  # a None entry blocks an import: Python's convention
        return 'none'
    spec = importlib.util.find_spec('mmcv')
    if spec is None or not spec.submodule_search_locations:
        return 'none'
    if sys.modules.get('mmcv._ext', 0) is None or not any(
            _ext_file(d) for d in spec.submodule_search_locations):
        return 'noops'
    try:
        importlib.import_module('mmcv._ext')
    except ImportError:
        return 'broken'
    return 'ops'


def read_stamp(path: str) -> dict:
    """The stamp as a dict; an empty dict when there is none. A stamp of the older one-line
    format (the key alone, always a full install) reads as ``{'key': KEY, 'level': 'full'}``."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    if len(lines) == 1 and '=' not in lines[0]:
        return {'key': lines[0], 'level': 'full'}
    return dict(ln.split('=', 1) for ln in lines if '=' in ln)


def why_not_up_to_date(stamp: dict, level: str, key: str, build: str, import_modules=True):
    """``None`` when the venv described by ``stamp`` serves ``level``, else the reason."""
    if level not in LEVELS:
        raise ValueError(f'level must be one of {LEVELS}, got {level!r}')
    if not stamp:
        return 'no install stamp'
    if stamp.get('key') != key:
        return 'the installer or the requirements changed since the last install'
    if stamp.get('level') not in LEVELS or LEVELS.index(stamp['level']) < LEVELS.index(level):
        return (f'the environment holds the {stamp.get("level")} level; {level} asks for mmcv '
                'with compiled ops, mmdet, mmsegmentation and the test tools')
    if stamp.get('mmcv') != build:
        return (f'the stamp records mmcv {stamp.get("mmcv")!r} but the venv now holds mmcv '
                f'{build!r}')
    if build not in ACCEPTED_MMCV[level]:
        return f'mmcv {build!r} does not serve the {level} level'
    if import_modules:
        for name in MODULES[level]:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001  (any failure means: install again)
                return f'import {name} failed: {type(exc).__name__}: {exc}'
    return None


def write_stamp(path: str, level: str, key: str, build: str) -> dict:
    import torch
    stamp = {'key': key, 'level': level, 'mmcv': build, 'torch': torch.__version__}
    with open(path, 'w') as f:
        f.writelines(f'{k}={v}\n' for k, v in stamp.items())
    return stamp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('key', 'mmcv', 'check', 'write'))
    parser.add_argument('--stamp')
    parser.add_argument('--level', choices=LEVELS)
    parser.add_argument('--key')
    args = parser.parse_args(argv)
    if args.command == 'key':
        print(stamp_key())
        return 0
    if args.command == 'mmcv':
        print(mmcv_build())
        return 0
    if not (args.stamp and args.level and args.key):
        parser.error(f'{args.command} needs --stamp, --level and --key')
    build = mmcv_build()
    if args.command == 'write':
        if build not in ACCEPTED_MMCV[args.level]:
            print(f'refusing to stamp the {args.level} level: mmcv is {build!r}',
                  file=sys.stderr)
            return 1
        write_stamp(args.stamp, args.level, args.key, build)
        return 0
    reason = why_not_up_to_date(read_stamp(args.stamp), args.level, args.key, build)
    if reason:
        print(reason)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
