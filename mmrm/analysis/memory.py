"""Peak memory of a few training steps of one model, measured in a fresh child process."""
import ctypes
import gc
import traceback
from typing import Optional, Sequence

import torch

from mmrm.utils.config import prepare_scope
from .timing import build_optim_wrapper, make_batch_factory, sync_device
from .variants import build_model, num_classes_of

__all__ = ['measure_memory']


def _proc_status_kb(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _fix_malloc() -> None:
    """Make glibc hand every block >= 128 KiB straight back to the OS on free (no dynamic mmap
    threshold, no heap trimming slack), so RSS follows the live tensors closely."""
    try:
        libc = ctypes.CDLL('libc.so.6')
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _memory_child(conn, model_cfg: dict, optim_cfg: Optional[dict], batch: int,
                  shape: Sequence[int], steps: int, device: str, scope_cfg: dict,
                  threads: Optional[int]) -> None:
    try:
        from mmengine.config import Config
        prepare_scope(Config(scope_cfg))
        if threads:
            torch.set_num_threads(threads)
        _fix_malloc()
        gc.collect()
        reset = _reset_peak_rss()
        rss0 = _proc_status_kb('VmRSS')
        hwm0 = _proc_status_kb('VmHWM')
        cuda = str(device).startswith('cuda')
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        model = build_model(model_cfg, device)
        model.train()
        ow = build_optim_wrapper(model, optim_cfg, device)
        fresh = make_batch_factory(batch, shape, num_classes_of(model_cfg))
        for _ in range(steps):
            model.train_step(fresh(), ow)
        sync_device(device)
        hwm = _proc_status_kb('VmHWM')
        out = dict(rss_start_mb=rss0 / 1024 if rss0 else None,
                   peak_rss_mb=hwm / 1024 if hwm else None,
                   hwm_reset=reset or (hwm0 is not None and hwm0 <= (rss0 or 0)))
        if hwm is not None and rss0 is not None:
            out['peak_growth_mb'] = (hwm - rss0) / 1024
        if cuda:
            out['cuda_peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
        conn.send(out)
    except BaseException:  # report any failure to the parent
        conn.send(dict(error=traceback.format_exc()))
    finally:
        conn.close()


def measure_memory(model_cfg: dict, optim_cfg: Optional[dict], batch: int,
                   shape: Sequence[int], steps: int = 3, device: str = 'cpu',
                   mode: str = 'fork', scope_cfg: Optional[dict] = None,
                   threads: Optional[int] = None, timeout: float = 1800) -> dict:
    """Peak memory of ``steps`` training steps of one model, in a fresh child process.

    CPU: the growth of the child's peak resident set size (``VmHWM``, reset when the child
    starts) over its RSS before the model is built: parameters, gradients, optimizer state,
    activations, the RM history and allocator overhead, all of which this one model needs; the
    interpreter and libraries are excluded. glibc returns blocks >= 128 KiB to the OS on free,
    so the peak follows the live tensors. CUDA: ``torch.cuda.max_memory_allocated``.

    ``mode='fork'`` forks the calling process (fast: no re-import; the caller must not have run
    parallel torch ops or initialised CUDA before, as the cost tool guarantees); ``'spawn'``
    starts a new interpreter (slow, always safe).
    """
    import multiprocessing as mp
    ctx = mp.get_context(mode)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_memory_child,
                       args=(child, model_cfg, optim_cfg, batch, tuple(shape), steps, device,
                             scope_cfg or {}, threads))
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            proc.kill()
            raise RuntimeError(f'memory measurement timed out after {timeout} s')
        out = parent.recv()
    except EOFError:
        out = dict(error=f'the child died (exit code {proc.exitcode})')
    finally:
        proc.join()
    if 'error' in out:
        raise RuntimeError('memory measurement failed:\n' + out['error'])
    return out
