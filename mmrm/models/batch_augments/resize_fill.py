"""ResizeFill (paper Eq. 2) with nearest interpolation, bit-identical to
``F.interpolate(mode='nearest')``, written straight into the box of the current batch.

Shrinking the whole history batch into a small box is what RM does at every step, and the
fastest way depends on the device:

- GPU: one gather (``index_select`` over the flattened pixels, cached indices) and one copy
  into the box: few kernels, no index arithmetic per step.
- CPU: one ``torch.gather`` from the flattened history planes straight into the strided box
  (``out=`` the box view: no temporary, no copy back; the history's planes are broadcast over
  the box rows, so it reads only the kept rows, and the index is one ``(h, w)`` table broadcast
  over the planes). The previous path (copy the kept rows, torch's 1-d nearest kernel along the
  width, which writes a contiguous temporary and copies it into the box) moved the box ~3 times
  through memory; on a 2-core AMD EPYC the gather is 0.66x its time at 64x3x32x32 and 0.78x at
  32x3x224x224 (#35; both are bound by reading the history rows from DRAM at 224). At 32 px the
  whole op is ~0.2-0.5 ms, so its Python side counts: shapes are read once as ints and the
  device as ``is_cpu``. The op's figures against CutMix, with the CPU and the commands, are in
  ``docs/en/results/cost.md`` ("The RM op alone").
"""
import functools

import torch


@functools.lru_cache(maxsize=2048)
def nearest_index(out_size: int, in_size: int, device: torch.device) -> torch.Tensor:
    """``src[j] = floor(j * (in / out))`` with the scale in float32: torch's nearest rule.

    Cached: a box side takes at most ``in_size`` values, so after a few hundred steps every
    index exists and the op launches no index kernels (they dominate it on a GPU). Read-only.
    The Python scalar is cast to float32 by the multiplication itself; a device tensor made
    from it would be a blocking copy.
    """
    with torch.inference_mode(False):  # a cached inference tensor could not join autograd
        idx = torch.arange(out_size, dtype=torch.float32, device=device) * (in_size / out_size)
        return idx.floor_().long().clamp_max_(in_size - 1)


@functools.lru_cache(maxsize=2048)
def row_offsets(out_h: int, in_h: int, in_w: int, device: torch.device) -> torch.Tensor:
    """``nearest_index(out_h, in_h) * in_w``: where each kept row starts in a flat plane.
    Cached and read-only like :func:`nearest_index`."""
    with torch.inference_mode(False):
        return nearest_index(out_h, in_h, device) * in_w


#: boxes of at most this many pixels keep their flat index table (<= 32 KB each, so the
#: cache below holds at most 32 MB; at 32 px every box fits and no index op runs per step)
SMALL_BOX = 4096


@functools.lru_cache(maxsize=1024)
def flat_index(out_h: int, out_w: int, in_h: int, in_w: int,
               device: torch.device) -> torch.Tensor:
    """``(out_h, out_w)`` table of flat plane offsets ``rows[i] * in_w + cols[j]`` of the
    nearest source pixels. Cached and read-only like :func:`nearest_index`."""
    with torch.inference_mode(False):
        return torch.add(row_offsets(out_h, in_h, in_w, device)[:, None],
                         nearest_index(out_w, in_w, device))


def nearest_resize(src: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """``F.interpolate(src, (out_h, out_w), mode='nearest')`` as one gather; ``src`` is
    ``(N, C, H, W)``."""
    n, c, h, w = src.shape
    rows = nearest_index(out_h, h, src.device)
    cols = nearest_index(out_w, w, src.device)
    flat = (rows[:, None] * w + cols[None, :]).view(-1)
    return src.reshape(n * c, h * w).index_select(1, flat).view(n, c, out_h, out_w)


CPU = torch.device('cpu')


def _shape_error(dst: torch.Tensor, src: torch.Tensor) -> ValueError:
    return ValueError('ResizeFill resizes an (N, C, H, W) image batch into an (N, C, h, w) box '
                      f'of the same N and C; got {tuple(src.shape)} into {tuple(dst.shape)}')


def resize_fill_nearest_(dst: torch.Tensor, src: torch.Tensor) -> None:
    """``dst.copy_(F.interpolate(src, dst.shape[-2:], mode='nearest'))``, bit for bit:
    ``src`` ``(N, C, H, W)`` resized into ``dst``, an ``(N, C, h, w)`` view (the box)."""
    # the shapes read once as ints, the device as a flag (Size slices and ``.device`` objects
    # cost microseconds each, a sizeable part of the op at 32 px, #35)
    if src.ndim != 4 or dst.ndim != 4:
        raise _shape_error(dst, src)
    n, c, in_h, in_w = src.shape
    dst_n, dst_c, out_h, out_w = dst.shape
    if dst_n != n or dst_c != c:
        raise _shape_error(dst, src)
    if not src.is_cpu or dst.dtype != src.dtype:
        dst.copy_(nearest_resize(src, out_h, out_w).to(dst.dtype))
        return
    # out[n, c, i, j] = src_flat[n, c, rows[i] * W + cols[j]]: the flat plane broadcast over
    # the box rows (stride 0, nothing copied), the index table broadcast over N and C
    if out_h * out_w <= SMALL_BOX:
        flat = flat_index(out_h, out_w, in_h, in_w, CPU)
    else:  # one add per step: large tables are not worth keeping (a 224-px box has ~11k)
        flat = torch.add(row_offsets(out_h, in_h, in_w, CPU)[:, None],
                         nearest_index(out_w, in_w, CPU))
    if src.is_contiguous():  # one view instead of a reshape and an expand
        planes = src.as_strided((n, c, out_h, in_h * in_w), (c * in_h * in_w, in_h * in_w, 0, 1))
    else:
        planes = src.reshape(n, c, 1, in_h * in_w).expand(n, c, out_h, in_h * in_w)
    torch.gather(planes, 3, flat.expand(n, c, out_h, out_w), out=dst)
