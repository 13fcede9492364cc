"""What of the OpenMMLab stack this environment holds, and a clear stop where a config needs more.

``make demo`` sets up the *classification* level of the repository's ``.venv`` (torch, mmengine,
mmcv 2.1.0 built without its compiled ops, mmpretrain, mmrm): RecursiveMix classification uses
no compiled op. Detection and segmentation configs (MMDetection, MMSegmentation), mmrm's PVTv2
backbone (built on MMDetection's) and ``roi_backend='mmcv'`` need more: mmcv's compiled ops and
those libraries, which ``make install`` adds to the same ``.venv``. Run in an environment without
them, such a config would fail deep inside mmcv or mmengine (``No module named 'mmcv._ext'``,
``mmdet is not installed``, a registry ``KeyError``); the tools check first and stop with
:func:`message` instead, which names what is missing and the command that completes it:

* ``tools/train.py`` and ``tools/test.py`` load their config with :func:`load_config_checked`
  and run under :func:`exit_on_missing` (the message, no traceback, exit status 3);
* ``tools/dist_*.sh`` and ``tools/slurm_*.sh`` run this file as a script before they start any
  rank (``python mmrm/utils/stack.py CONFIG``), so the message is printed once;
* ``mmrm.utils.load_config`` (the analysis tools) raises :class:`StackMissing`;
* ``import mmrm`` in an environment whose mmcv lacks its ops adds the message below the traceback
  of an uncaught ImportError of a missing piece (:func:`install_hint_hook`): the path of another
  repository's tools that import mmrm through a config's ``custom_imports``.

Standard library only at import time (mmengine is imported to parse a config only when a piece
is missing), so running it as a script costs a fraction of a second in a full environment.
"""
import importlib.machinery
import importlib.util
import os.path as osp
import re
import sys
from typing import Dict, Iterable, List, Optional

__all__ = [
    'PIECES', 'COMPLETE_COMMAND', 'StackMissing', 'has_mmcv_ops', 'available', 'missing',
    'message', 'require', 'config_needs', 'needs_from_exception', 'load_config_checked',
    'check_config_file', 'exit_on_missing', 'install_hint_hook'
]

#: what detection / segmentation need beyond the classification level, and how to say it
PIECES = {
    'ops': "mmcv's compiled ops (mmcv._ext)",
    'mmdet': 'MMDetection (mmdet)',
    'mmseg': 'MMSegmentation (mmseg)',
}
COMPLETE_COMMAND = 'make install'
#: exit status of the tools when a piece is missing (argparse uses 2)
EXIT_STATUS = 3
#: registered mmrm names that need a piece, with the pieces
_TYPES_NEEDING = {'PyramidVisionTransformerV2Cls': ('ops', 'mmdet')}


class StackMissing(ImportError):
    """A config or component needs a part of the OpenMMLab stack this environment lacks; the
    message says which and how to complete the environment."""


def _module_available(name: str) -> bool:
    # a ``None`` entry in sys.modules blocks an import (Python's own convention): honour it
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_mmcv_ops() -> bool:
    """Whether mmcv's compiled ops are there (``mmcv/_ext*.so``), without importing mmcv."""
    if 'mmcv._ext' in sys.modules:
        return sys.modules['mmcv._ext'] is not None
    if not _module_available('mmcv'):
        return False
    mmcv = sys.modules.get('mmcv')
    if mmcv is not None:
        dirs = list(getattr(mmcv, '__path__', []))
    else:
        spec = importlib.util.find_spec('mmcv')
        dirs = list(spec.submodule_search_locations or [])
    return any(
        osp.isfile(osp.join(d, '_ext' + suffix)) for d in dirs
        for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def available(piece: str) -> bool:
    """Whether ``piece`` (a key of :data:`PIECES`) is in this environment."""
    if piece == 'ops':
        return has_mmcv_ops()
    if piece not in PIECES:
        raise KeyError(f'unknown piece {piece!r}; one of {sorted(PIECES)}')
    return _module_available(piece)


def missing(needs: Iterable[str] = tuple(PIECES)) -> List[str]:
    """The pieces of ``needs`` this environment lacks, in :data:`PIECES` order."""
    needs = set(needs)
    return [p for p in PIECES if p in needs and not available(p)]


def _environment_note(lacking: List[str]) -> str:
    stamp = osp.join(sys.prefix, '.mmrm-installed')
    level = None
    if osp.isfile(stamp):
        with open(stamp) as f:
            for line in f:
                if line.startswith('level='):
                    level = line.strip().split('=', 1)[1]
    if level == 'classification':
        return (f'this environment ({sys.prefix}) holds the classification level that '
                '`make demo` sets up: mmcv 2.1.0 built without its compiled ops, no mmdet or '
                'mmsegmentation')
    return f'this environment ({sys.prefix}) does not have {"it" if len(lacking) == 1 else "them"}'


def message(purpose: str, lacking: Iterable[str], why: Optional[Dict[str, str]] = None) -> str:
    """What to tell a user whose ``purpose`` needs the pieces ``lacking`` (``why``: the reason
    per piece, e.g. the config key that asks for it)."""
    lacking = [p for p in PIECES if p in set(lacking)]
    names = [PIECES[p] for p in lacking]
    need = names[0] if len(names) == 1 else ', '.join(names[:-1]) + ' and ' + names[-1]
    reasons = list(dict.fromkeys((why or {}).get(p) for p in lacking if (why or {}).get(p)))
    because = f' (for its {", ".join(reasons)})' if reasons else ''
    return (
        f'{purpose} needs {need}{because}; {_environment_note(lacking)}.\n'
        f'Complete the environment with\n\n    {COMPLETE_COMMAND}\n\n'
        'in the mmrm repository (it builds mmcv 2.1.0 with its compiled ops once, ~11 min on 2 '
        'cores, or takes the wheel from its cache, and adds mmdet and mmsegmentation to the same '
        '.venv), then run this again. In an environment of your own: mmcv==2.1.0 built with its '
        'ops (not mmcv-lite, not MMCV_WITH_OPS=0), mmdet==3.3.0, mmsegmentation==1.2.2.')


def require(purpose: str, needs: Iterable[str] = tuple(PIECES), cause=None) -> None:
    """Raise :class:`StackMissing` if any of ``needs`` is missing."""
    lacking = missing(needs)
    if lacking:
        raise StackMissing(message(purpose, lacking)) from cause


def _add(needs: Dict[str, str], pieces: Iterable[str], why: str) -> None:
    for piece in pieces:
        needs.setdefault(piece, why)


def config_needs(cfg) -> Dict[str, str]:
    """The pieces a parsed config needs, each with the first reason found: a ``default_scope``
    or ``custom_imports`` of mmdet / mmseg, a ``type`` scoped ``mmdet.`` / ``mmseg.``, mmrm's
    PVTv2 backbone, or ``roi_backend='mmcv'``."""
    needs: Dict[str, str] = {}
    scope = cfg.get('default_scope', None)
    if scope in ('mmdet', 'mmseg'):
        _add(needs, (scope, 'ops'), f"default_scope='{scope}'")
    imports = (cfg.get('custom_imports', None) or {}).get('imports', []) or []
    for module in [imports] if isinstance(imports, str) else imports:
        top = str(module).split('.')[0]
        if top in ('mmdet', 'mmseg'):
            _add(needs, (top, 'ops'), f"custom_imports '{module}'")
        elif str(module).startswith('mmcv.ops'):
            _add(needs, ('ops', ), f"custom_imports '{module}'")

    def walk(node):
        if isinstance(node, dict):
            kind = node.get('type')
            if isinstance(kind, str):
                top, _, name = kind.rpartition('.')
                if top in ('mmdet', 'mmseg'):
                    _add(needs, (top, 'ops'), f"type='{kind}'")
                if name in _TYPES_NEEDING:
                    _add(needs, _TYPES_NEEDING[name], f"type='{kind}'")
            if node.get('roi_backend') == 'mmcv':
                _add(needs, ('ops', ), "roi_backend='mmcv'")
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg))
    return {p: needs[p] for p in PIECES if p in needs}


def needs_from_exception(exc: BaseException) -> List[str]:
    """The pieces an ImportError (or mmengine's parsing error of an ``mmdet::`` base) names,
    looking through its causes: ``No module named 'mmcv._ext'``, ``mmdet is not installed``,
    ``mmsegmentation is not installed`` (mmdet and mmseg bring the ops with them: their models
    import ``mmcv.ops``)."""
    found = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = f'{getattr(exc, "name", None) or ""} {exc}'
        if 'mmcv._ext' in text:
            found.append('ops')
        for lib, pattern in (('mmdet', 'mmdet'), ('mmseg', 'mmseg|mmsegmentation')):
            if re.search(rf"(?<![\w.])({pattern})(?![\w])", text):
                found.extend((lib, 'ops'))  # their models import mmcv.ops
        exc = exc.__cause__ or exc.__context__
    return [p for p in PIECES if p in found]


def load_config_checked(path: str, purpose: Optional[str] = None):
    """``Config.fromfile(path)``, refusing with :class:`StackMissing` a config that needs a
    piece this environment lacks (also when that already stops the parsing, as an
    ``mmdet::`` base without mmdet does). In a full environment it is ``Config.fromfile``."""
    from mmengine.config import Config
    purpose = purpose or path
    if not missing():
        return Config.fromfile(path)
    try:
        cfg = Config.fromfile(path)
    except Exception as exc:
        lacking = [p for p in needs_from_exception(exc) if not available(p)]
        if lacking:
            raise StackMissing(
                message(f'{purpose} (parsing stopped: {type(exc).__name__}: {exc})',
                        lacking)) from exc
        raise
    needs = config_needs(cfg)
    lacking = missing(needs)
    if lacking:
        raise StackMissing(message(purpose, lacking, needs))
    return cfg


def check_config_file(path: str) -> Optional[str]:
    """The message for ``path`` if it needs a missing piece, else ``None`` (at once, without
    parsing the config, when nothing is missing)."""
    if not missing():
        return None
    try:
        load_config_checked(path)
    except StackMissing as exc:
        return str(exc)
    return None


def _explain(exc: BaseException) -> Optional[str]:
    if isinstance(exc, StackMissing):
        return str(exc)
    if isinstance(exc, ImportError):
        lacking = [p for p in needs_from_exception(exc) if not available(p)]
        if lacking:
            return message(f'This run (it failed with {type(exc).__name__}: {exc})', lacking)
    return None


def exit_on_missing(main, *args, **kwargs):
    """Run ``main``; if it stops on a missing piece, print the message (no traceback) to stderr
    and exit with :data:`EXIT_STATUS`. Other exceptions propagate unchanged."""
    try:
        return main(*args, **kwargs)
    except ImportError as exc:
        text = _explain(exc)
        if text is None:
            raise
        print(f'\n{text}', file=sys.stderr)
        sys.exit(EXIT_STATUS)


def install_hint_hook() -> bool:
    """Where mmcv lacks its compiled ops, make an uncaught ImportError of a missing piece end
    with :func:`message` (after the usual traceback). Idempotent; returns whether installed."""
    if getattr(sys.excepthook, '_mmrm_hint', False) or has_mmcv_ops():
        return False
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        try:
            text = _explain(value) if isinstance(value, ImportError) else None
        except Exception:  # noqa: BLE001  (never fail while reporting a failure)
            text = None
        if text and not isinstance(value, StackMissing):
            print(f'\n[mmrm] {text}', file=sys.stderr)

    hook._mmrm_hint = True
    sys.excepthook = hook
    return True


def main(argv=None) -> int:
    """``python mmrm/utils/stack.py CONFIG``: exit 0 when this environment can run CONFIG as
    far as the stack goes, else print the message and exit :data:`EXIT_STATUS`."""
    import argparse
    parser = argparse.ArgumentParser(description=main.__doc__.split(':')[0])
    parser.add_argument('config')
    args = parser.parse_args(argv)
    text = check_config_file(args.config)
    if text:
        print(text, file=sys.stderr)
        return EXIT_STATUS
    return 0


if __name__ == '__main__':
    # run as a file: its folder (mmrm/utils, with config.py, cli.py, ...) must not shadow
    # top-level modules of the same names
    if sys.path and osp.abspath(sys.path[0]) == osp.dirname(osp.abspath(__file__)):
        sys.path.pop(0)
    sys.exit(main())
