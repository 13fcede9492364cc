"""A run's record on disk: JSON written atomically, and what the run ran on (commit, library
versions). A reader sees the old file or the whole new one, never a part."""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Any, Dict, Optional

__all__ = ['REPO_ROOT', 'LIBRARIES', 'write_json_atomic', 'read_json', 'git_commit',
           'library_versions']

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the libraries whose versions a result records (distribution name: record name)
LIBRARIES = dict(torch='torch', mmengine='mmengine', mmcv='mmcv', mmpretrain='mmpretrain',
                 mmdet='mmdet', mmsegmentation='mmseg', submitit='submitit')


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
