"""Reading a checkpoint file, with one clear error for each way it can be unusable.

``torch.load`` answers a missing, empty, truncated or foreign file (a config, a plain pickle,
a zip of images) with an ``EOFError``, a miniz ``RuntimeError``, ``OSError: [Errno 22]``, a
``KeyError`` or an ``UnpicklingError`` whose text advises ``weights_only=False`` (for a file
that is merely not a checkpoint, the wrong advice; for an untrusted one, a dangerous one). What
the file is comes from its first bytes (zip, torch's legacy pickle, another pickle, anything
else) and, for a torch file, from reading its structure without running it (the zip's CRCs,
the legacy pickles' opcodes): a cut file is called truncated even where torch read a cut name
as a refused global. Every local load of
MMEngine (``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained')``) goes through
:func:`load_from_local` once :func:`register_checkpoint_loader` has run (``import mmrm`` does),
and mmrm's tools and converters through :func:`load_checkpoint_file`. Each failure is a
:class:`CheckpointError` naming the file and what is wrong with it; the load itself is
``torch.load(path, map_location=map_location)`` as MMEngine's, so what loads is unchanged.
"""
import os
import os.path as osp
import pickle
import pickletools
import re
import warnings
import zipfile
from typing import Optional

import torch

__all__ = ['CheckpointError', 'MissingCheckpointError', 'CorruptCheckpointError',
           'ForeignCheckpointError', 'UntrustedCheckpointError', 'load_checkpoint_file',
           'load_from_local', 'check_resume_checkpoint', 'register_checkpoint_loader']

ZIP_MAGIC = b'PK'  # torch.save's default format since torch 1.6 is a zip archive
#: torch's legacy format (``_use_new_zipfile_serialization=False``) opens with a pickle of
#: ``torch.serialization.MAGIC_NUMBER``: this LONG1 opcode, after the PROTO (and FRAME) opcodes
LEGACY_MAGIC = b'\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'
#: the pickles a legacy file opens with: magic number, protocol, sys info, the object, storage keys
LEGACY_PICKLES = 5
_RESAVE = 'an interrupted save or copy? Save or copy it again'


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; the message names the file and the reason."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """No file at the path (or a directory)."""


class CorruptCheckpointError(CheckpointError, RuntimeError):
    """A torch checkpoint that is empty, truncated or damaged."""


class ForeignCheckpointError(CheckpointError, ValueError):
    """A file that is not a checkpoint written by ``torch.save``, or one holding no checkpoint."""


class UntrustedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A pickle that the weights-only unpickler refuses: loading it would run its code."""


def _refused_global(text: str) -> Optional[str]:
    """The global the weights-only unpickler refused, from torch's (or mmrm's) message."""
    for pattern in (r'GLOBAL ([\w.]+)', r'Unsupported class ([\w.]+)',
                    r'(getattr\(.*?\)) is not allowed'):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return None


def _torch_reason(exc: Exception) -> str:
    """The part of torch's message that says what failed, on one line, without torch's advice
    (to load with ``weights_only=False``, to file an issue, to read the docs)."""
    text = str(exc)
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    text = re.split(r'\n\s*\n\s*Check the documentation|\. This is an internal|\. Please use',
                    text)[0]
    text = ' '.join(line.strip() for line in text.splitlines() if line.strip())
    text = re.sub(r'\x1b\[[0-9;]*m', '', text).strip().rstrip('.')
    if type(exc) in (RuntimeError, pickle.UnpicklingError) and text:
        return f'torch: {text}'
    return f'torch: {type(exc).__name__}: {text}' if text else f'torch: {type(exc).__name__}'


def _format(head: bytes) -> str:
    """``'zip'``, ``'legacy'`` (torch's pre-1.6 format), ``'pickle'`` (a binary pickle that is
    not torch's) or ``'other'``, from the first bytes of the file."""
    if head.startswith(ZIP_MAGIC):
        return 'zip'
    if head.startswith(b'\x80'):  # pickle PROTO opcode
        return 'legacy' if LEGACY_MAGIC in head[:32] else 'pickle'
    return 'other'


def _zip_state(path: str) -> str:
    """``'ok'`` (a readable archive with ``<archive>/data.pkl``, every member's CRC right),
    ``'foreign'`` (a readable archive without one: not torch.save's) or ``'damaged'``."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith('data.pkl') for name in archive.namelist()):
                return 'foreign'
            return 'ok' if archive.testzip() is None else 'damaged'
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return 'damaged'


def _legacy_complete(path: str) -> bool:
    """Whether the pickles a legacy torch file opens with are complete, read opcode by opcode
    with :func:`pickletools.genops` (which runs nothing)."""
    try:
        with open(path, 'rb') as f:
            for _ in range(LEGACY_PICKLES):
                for _op in pickletools.genops(f):
                    pass
    except Exception:  # noqa: BLE001  (any parse failure: cut or damaged)
        return False
    return True


def _refusal(path: str, refused: str) -> 'UntrustedCheckpointError':
    return UntrustedCheckpointError(
        f'checkpoint {path}: refused: it holds {refused}, which is not a tensor, a number '
        'or one of the MMEngine objects a checkpoint needs; unpickling it could run code '
        'from the file, so it is loaded weights-only and refused. Checkpoints written by '
        'mmrm, MMEngine or MMPretrain never need that: do not load this file unless you '
        'know who made it and why it holds that')


def _corrupt(path: str, size: int, reason: str) -> 'CorruptCheckpointError':
    return CorruptCheckpointError(
        f'checkpoint {path}: the file is truncated or damaged ({size} bytes; {reason}); '
        f'{_RESAVE}')


def _foreign(path: str, what: str) -> 'ForeignCheckpointError':
    return ForeignCheckpointError(f'checkpoint {path}: not a checkpoint: {what}; give the .pth '
                                  'file written by training (or by a converter)')


def _explain(path: str, exc: Exception, head: bytes, size: int) -> CheckpointError:
    """The :class:`CheckpointError` for ``torch.load``'s ``exc`` on the file at ``path``."""
    kind = _format(head)
    refused = (_refused_global(str(exc)) if isinstance(exc, pickle.UnpicklingError) else None)
    if kind == 'zip':
        state = _zip_state(path)
        if state == 'foreign':  # a zip that has no <archive>/data.pkl: not torch.save's
            return _foreign(path, 'a zip archive, but not one torch.save wrote')
        if state == 'damaged':
            return _corrupt(path, size, _torch_reason(exc))
    elif kind == 'legacy':
        if not _legacy_complete(path):  # a cut pickle: torch may read a cut name as a global
            return _corrupt(path, size, 'its pickle stops before its end')
        if isinstance(exc, (EOFError, pickle.UnpicklingError)) and not refused and \
                'Unsupported operand' in str(exc):
            return CheckpointError(
                f'checkpoint {path}: cannot be loaded weights-only: torch.save wrote it in '
                'the legacy (torch < 1.6) format with a pickle protocol above 2, which the '
                f'weights-only unpickler cannot read ({_torch_reason(exc)})')
        if isinstance(exc, EOFError) or 'unexpected EOF' in str(exc):  # cut storages
            return _corrupt(path, size, _torch_reason(exc))
    else:
        what = ('a Python pickle, but not one torch.save wrote' if kind == 'pickle' else
                f'not a file torch.save wrote (it starts with {head[:16]!r})')
        if refused:
            what += (f' (and it holds {refused}: unpickling it could run code from the file; '
                     'it was refused, not run)')
        return _foreign(path, what)
    # an intact torch file (zip or legacy) that torch refuses or cannot load
    if refused:
        return _refusal(path, refused)
    if isinstance(exc, pickle.UnpicklingError):  # refused for another reason than a global
        return UntrustedCheckpointError(
            f'checkpoint {path}: refused by the weights-only unpickler '
            f'({_torch_reason(exc)}); unpickling it otherwise could run code from the file. '
            'Checkpoints written by mmrm, MMEngine or MMPretrain never need that: do not load '
            'this file unless you know who made it and why')
    return CheckpointError(f'checkpoint {path}: cannot be loaded ({_torch_reason(exc)})')


def load_checkpoint_file(path: str, map_location=None, lazy: bool = False) -> dict:
    """``torch.load(path, map_location=map_location)`` of a checkpoint (a dict: MMEngine's,
    with ``state_dict`` and ``meta``, or a bare state dict), or a :class:`CheckpointError`
    naming the file: missing, empty, truncated or damaged, not written by ``torch.save``,
    not holding a dict, or refused by the weights-only unpickler (saying why). ``lazy``
    memory-maps the tensors of a zip-format file instead of reading them (to inspect it)."""
    path = osp.expanduser(str(path))
    if not osp.exists(path):
        raise MissingCheckpointError(f'checkpoint {path}: no such file')
    if osp.isdir(path):
        raise MissingCheckpointError(f'checkpoint {path}: is a directory, not a checkpoint '
                                     'file')
    size = os.path.getsize(path)
    if size == 0:
        raise CorruptCheckpointError(f'checkpoint {path}: the file is empty (0 bytes), not a '
                                     f'checkpoint; {_RESAVE}')
    with open(path, 'rb') as f:
        head = f.read(64)
    try:
        with warnings.catch_warnings():
            # torch warns of a pickle protocol other than 2 (asking for an issue) before it
            # fails on a pickle it did not write: the error below says what the file is
            warnings.filterwarnings('ignore', message='Detected pickle protocol',
                                    category=UserWarning)
            if lazy and head.startswith(ZIP_MAGIC):
                checkpoint = torch.load(path, map_location=map_location, mmap=True)
            else:
                checkpoint = torch.load(path, map_location=map_location)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001  (EOFError, OSError, RuntimeError, KeyError, ...)
        raise _explain(path, exc, head, size) from None
    if not isinstance(checkpoint, dict):
        raise ForeignCheckpointError(
            f'checkpoint {path}: not a checkpoint: torch.save wrote a '
            f'{type(checkpoint).__name__} into it, where a checkpoint is a dict (MMEngine\'s '
            'with state_dict and meta, or a model\'s state_dict)')
    return checkpoint


def load_from_local(filename: str, map_location=None) -> dict:
    """MMEngine's local checkpoint loader (``CheckpointLoader`` scheme ``''``), with the errors
    of :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location)


def check_resume_checkpoint(path: str) -> None:
    """A training run can resume from ``path``: a readable checkpoint with the ``meta`` (epoch,
    iteration) and ``state_dict`` a Runner writes, else a :class:`CheckpointError`. The tensors
    of a zip-format file are memory-mapped, not read (the Runner loads them next). A URL
    (``s3://``, ``https://``, ...) is left to MMEngine's loader of its scheme."""
    if re.match(r'[A-Za-z][\w+.-]*://', str(path)):
        return
    checkpoint = load_checkpoint_file(path, 'cpu', lazy=True)
    missing = [key for key in ('meta', 'state_dict') if key not in checkpoint]
    if missing:
        raise ForeignCheckpointError(
            f'checkpoint {path}: cannot resume from it: it has no {" / ".join(missing)} (a '
            'model\'s weights, not a training checkpoint); to start a new run from these '
            f'weights give --cfg-options load_from={path} instead of --resume')


def register_checkpoint_loader() -> None:
    """Make :func:`load_from_local` MMEngine's loader of local paths (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
