"""What a run's outcome depends on: its key (DESIGN.md §6) and the digests it is made of.

A run is its key: the resolved config, the ``--cfg-options`` that shape it, the data it reads,
the sha256 of every checkpoint it loads and its seed. Two runs of one key are the same run; a
run of another key never reuses a result.
"""
import hashlib
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

__all__ = ['KEY_FIELDS', 'CHECKPOINT_KEYS', 'RunKey', 'config_digest', 'file_sha256',
           'files_digest', 'normalise_options', 'parse_options', 'config_inputs']

#: the fields of a run's key, in the order a difference is reported
KEY_FIELDS = ('config', 'cfg_options', 'data', 'checkpoints', 'seed')
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


def _config_tree(path: str) -> Optional[str]:
    """Where a config's local ``_base_`` files lie: its nearest ancestor folder named
    ``configs`` (the OpenMMLab layout), else None."""
    probe = osp.dirname(osp.abspath(path))
    while osp.basename(probe) != 'configs':
        parent = osp.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    return probe


def _tree_stamp(folder: str) -> str:
    """sha256 over the paths and contents of every ``.py`` file below ``folder`` (a few ms
    for this repository's configs, where resolving one config costs ~1 s: an ``mmdet::``
    base makes MMEngine read the package's metafiles)."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.endswith('.py'):
                with open(osp.join(root, name), 'rb') as f:
                    h.update(osp.join(root, name).encode() + b'\0' + f.read() + b'\0')
    return h.hexdigest()


_CONFIG_CACHE: Dict[tuple, str] = {}


def config_digest(path: str) -> str:
    """sha256 of a config as MMEngine resolves it (its ``_base_`` files merged), so that a
    change in any base changes it while moving or reformatting the files does not.

    A config inside a ``configs`` folder is resolved once per process while no ``.py`` file of
    that folder changes (checked by content): a chain or a table check keys ~100 runs from a
    few configs. Bases in installed packages (``mmdet::...``) are taken as fixed while a
    process runs; a config elsewhere is resolved on every call."""
    tree = _config_tree(path)
    sig = None if tree is None else (osp.abspath(path), _tree_stamp(tree))
    if sig is not None and sig in _CONFIG_CACHE:
        return _CONFIG_CACHE[sig]
    from mmengine.config import Config
    cfg = Config.fromfile(path).to_dict()
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=repr).encode()).hexdigest()
    if sig is not None:
        _CONFIG_CACHE[sig] = digest
    return digest


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

    def canonical(self) -> Dict[str, Any]:
        """:meth:`to_dict` with the options in :func:`normalise_options` form: two keys whose
        options MMEngine applies alike (another order, a key given twice) are equal."""
        return dict(self.to_dict(), cfg_options=normalise_options(self.cfg_options))

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.digest[:8]

    def differs(self, other: Optional[Dict[str, Any]]) -> List[str]:
        """The key fields in which the recorded key ``other`` (a :meth:`to_dict`, as a record
        holds it) differs, options compared in canonical form."""
        if not isinstance(other, dict):
            return list(KEY_FIELDS)
        mine = self.canonical()
        theirs = dict(other, cfg_options=normalise_options(other.get('cfg_options') or ()))
        return [k for k in KEY_FIELDS if mine[k] != theirs.get(k)]


def normalise_options(options: Sequence[str]) -> List[str]:
    """``--cfg-options`` strings as MMEngine applies them, in one canonical form: MMEngine
    parses them into one dict (``DictAction``: the last value of a key wins) and merges that
    dict into the config, so the order of different keys changes nothing. Hence: whitespace
    around key and value stripped, one entry per key (its last value), sorted by key."""
    last: Dict[str, str] = {}
    for item in options:
        key, sep, value = str(item).partition('=')
        if not sep:  # not a cfg-option (e.g. a flag of the tool): kept as it is
            last[str(item).strip()] = None
            continue
        last[key.strip()] = value.strip()
    return [k if v is None else f'{k}={v}' for k, v in sorted(last.items())]


def parse_options(options: Sequence[str]) -> Dict:
    """``--cfg-options`` strings as MMEngine's ``DictAction`` parses them (the dict a
    config's ``merge_from_dict`` takes)."""
    from mmengine.config import DictAction
    out = {}
    for item in options:
        key, sep, value = item.partition('=')
        if not sep:
            raise ValueError(f'cfg-option {item!r}: expected KEY=VALUE')
        out[key] = DictAction._parse_iterable(value)
    return out


#: config keys whose string value names a checkpoint the run loads
CHECKPOINT_KEYS = ('load_from', 'checkpoint', 'pretrained')


def _checkpoint_paths(obj: Any, prefix: str = '') -> Dict[str, str]:
    """``{dotted path: value}`` of every string under a :data:`CHECKPOINT_KEYS` key."""
    out: Dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f'{prefix}.{k}' if prefix else str(k)
            if k in CHECKPOINT_KEYS and isinstance(v, str) and v:
                out[path] = v
            else:
                out.update(_checkpoint_paths(v, path))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_checkpoint_paths(v, f'{prefix}.{i}'))
    return out


def config_inputs(config: str, options: Sequence[str] = (),
                  cwd: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """What the resolved ``config`` (with ``options`` applied) reads besides its code:
    ``checkpoints``, ``{dotted path: sha256}`` of every checkpoint it names (``load_from``,
    every ``init_cfg.checkpoint``, ``pretrained``; a relative path resolved against ``cwd``,
    as the tool that loads it would; a name that is not a local file, e.g. a URL, kept as
    ``'name:<value>'``), and ``data``, ``{dotted path of a dataset: files_digest(data_root)}``
    of every dataloader's dataset (the files at the top of its ``data_root``: Fashion-MNIST's
    IDX files, an image folder's annotation files)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    opts = [o for o in normalise_options(options) if '=' in o]
    if opts:
        cfg.merge_from_dict(parse_options(opts))
    cfg = cfg.to_dict()
    base = cwd or os.getcwd()
    checkpoints = {}
    for path, value in sorted(_checkpoint_paths(cfg).items()):
        local = value if osp.isabs(value) else osp.join(base, value)
        checkpoints[path] = file_sha256(local) if osp.isfile(local) else f'name:{value}'
    data = {}
    for name in sorted(k for k in cfg if k.endswith('_dataloader')):
        dataset = (cfg[name] or {}).get('dataset') or {}
        root = dataset.get('data_root') if isinstance(dataset, dict) else None
        if isinstance(root, str):
            folder = root if osp.isabs(root) else osp.join(base, root)
            data[f'{name}.dataset'] = files_digest(folder)
    return dict(checkpoints=checkpoints, data=data)
