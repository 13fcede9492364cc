"""Safe loading of MMEngine checkpoints under ``torch.load(weights_only=True)``.

torch >= 2.6 loads with ``weights_only=True`` by default and MMEngine 0.10.7 does not pass the
argument, so every Runner resume, and ``load_checkpoint`` of a checkpoint whose ``meta`` or
``message_hub`` holds numpy values or MMEngine objects, fails with
``UnpicklingError: ... Unsupported global``. Switching ``weights_only`` off
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) would let any checkpoint run code; instead
:func:`register_safe_globals` (called once at ``import mmrm``) allowlists exactly the globals a
Runner checkpoint needs, measured by saving and resuming real checkpoints:

===========================================  =================================================
global in the pickle                         why it is there
===========================================  =================================================
``numpy.core.multiarray._reconstruct``        numpy arrays (``HistoryBuffer`` logs);
``numpy._core.multiarray._reconstruct``       numpy 1.x / 2.x spelling, both registered
``numpy.ndarray``, ``numpy.dtype``            numpy arrays and scalars
``numpy.dtypes.*DType``                       the concrete dtype classes (numpy >= 1.25) that
                                              the unpickler's BUILD step checks
``numpy.core.multiarray.scalar``              numpy scalars (``message_hub.runtime_info``'s
``numpy._core.multiarray.scalar``             ``eta``, metric values); both spellings
``mmengine.logging.HistoryBuffer``            ``message_hub.log_scalars``
``builtins.getattr``                          ``HistoryBuffer`` pickles its statistics methods
                                              as ``getattr(HistoryBuffer, 'mean')``. NOT the
                                              real ``getattr``: a restricted one that only
                                              returns ``HistoryBuffer``'s own statistics
                                              methods and raises for anything else.
===========================================  =================================================

Everything else (``__reduce__`` payloads, arbitrary classes and functions) is still refused
by torch's weights-only unpickler. ``mmengine.config.ConfigDict`` is *not* needed: MMEngine
stores the config as text.
"""
import builtins
import pickle
from typing import List

import torch

__all__ = ['register_safe_globals', 'safe_globals_list']

_REGISTERED: List = []


def _torch_needs_allowlist() -> bool:
    """True on torch >= 2.6 (weights_only=True by default) with the API."""
    try:
        major, minor = (int(x) for x in torch.__version__.split('.')[:2])
    except ValueError:  # pragma: no cover - exotic version strings
        return hasattr(torch.serialization, 'add_safe_globals')
    return (major, minor) >= (2, 6) and hasattr(torch.serialization,
                                                'add_safe_globals')


# the methods HistoryBuffer.__init__ puts into HistoryBuffer._statistics_methods
_HISTORY_BUFFER_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))


def _history_buffer_getattr(obj, name, *default):
    """Stand-in for ``builtins.getattr`` inside weights-only unpickling.

    MMEngine's ``HistoryBuffer.__getstate__`` stores its statistics methods
    (``min``/``max``/``current``/``mean`` and any registered with
    ``HistoryBuffer.register_statistics``); pickle protocol 2 writes such a
    method as ``getattr(HistoryBuffer, 'mean')``. Only that is answered.
    """
    from mmengine.logging import HistoryBuffer
    if (obj is HistoryBuffer and isinstance(name, str)
            and (name in _HISTORY_BUFFER_STATISTICS
                 or name in HistoryBuffer._statistics_methods)):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'weights-only load: getattr({obj!r}, {name!r}) is not allowed '
        '(mmrm only allows HistoryBuffer statistics methods)')


def safe_globals_list() -> list:
    """The allowlist entries (objects or ``(object, 'module.name')`` tuples)
    that :func:`register_safe_globals` registers."""
    import numpy as np
    from mmengine.logging import HistoryBuffer

    # the real multiarray module: numpy 2 -> numpy._core, numpy 1 -> numpy.core
    try:
        from numpy._core import multiarray
        multiarray._reconstruct  # numpy 1.26's numpy._core is a stub
    except (ImportError, AttributeError):
        from numpy.core import multiarray

    entries = [np.ndarray, np.dtype, HistoryBuffer]
    for func_name in ('_reconstruct', 'scalar'):
        func = getattr(multiarray, func_name)
        for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            entries.append((func, f'{mod}.{func_name}'))
    try:
        import numpy.dtypes as np_dtypes  # numpy >= 1.25
    except ImportError:  # pragma: no cover - old numpy
        np_dtypes = None
    if np_dtypes is not None:
        for name in dir(np_dtypes):
            obj = getattr(np_dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                entries.append(obj)
    entries.append((_history_buffer_getattr, 'builtins.getattr'))
    return entries


def register_safe_globals() -> list:
    """Allow the globals of MMEngine checkpoints in weights-only loading.

    Idempotent; a no-op (returning ``[]``) on torch < 2.6. Returns the registered entries.
    Called by ``import mmrm``.
    """
    if not _torch_needs_allowlist():
        return []
    if _REGISTERED:
        return list(_REGISTERED)
    entries = safe_globals_list()
    if getattr(builtins, 'getattr') in set(
            torch.serialization.get_safe_globals()):
        # someone allowlisted the real getattr already: do not shadow it
        entries = [
            e for e in entries
            if not (isinstance(e, tuple) and e[1] == 'builtins.getattr')
        ]
    torch.serialization.add_safe_globals(entries)
    _REGISTERED.extend(entries)
    return list(_REGISTERED)
