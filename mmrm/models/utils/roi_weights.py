"""The 1x1 RoIAlign of one box as a fixed weighted sum over the map (paper Eq. 4).

RecursiveMix pastes ONE box per batch, so the RoIAlign of its consistency head (output 1x1,
``aligned=True``, adaptive sampling ``sampling_ratio=0``) is the same linear functional of every
sample's map: ``pooled[n, c] = sum_{y,x} W[y, x] * F[n, c, y, x]``. :func:`roi_align_1x1_weights`
builds ``W`` on the host from the box, with the float32 arithmetic of the RoIAlign kernels
(mmcv, torchvision): the box in map coordinates is ``b * s - 0.5``, the bin is sampled on a
``ceil(roi_h) x ceil(roi_w)`` grid of points at the centres of equal cells, each point is read
bilinearly (a point more than one cell outside the map reads 0; coordinates are clamped into the
map), and the samples are averaged. Sampling is separable, so ``W = outer(w_y, w_x)``.
"""
import functools
import math
from typing import Sequence, Tuple

import numpy as np
import torch


def _axis_weights(start: float, end: float, scale: float, size: int) -> np.ndarray:
    """Weights over one axis of ``size`` cells for the box side ``[start, end)`` (input px)."""
    f32 = np.float32
    # float32 throughout, as the kernels (the scale too): ceil() below sees the same extent
    scale = f32(scale)
    lo = f32(start) * scale - f32(0.5)  # aligned=True: pixel centres at integer + 0.5
    hi = f32(end) * scale - f32(0.5)
    extent = hi - lo
    grid = int(math.ceil(extent))  # adaptive sampling_ratio=0: ceil(roi size / 1 bin)
    if grid <= 0:  # an empty box samples nothing (RoIAlign returns 0)
        return np.zeros(size, dtype=np.float64)
    # the kernels' order of float32 operations: lo + ((i + 0.5) * extent) / grid
    points = lo + (np.arange(grid, dtype=f32) + f32(0.5)) * extent / f32(grid)
    valid = (points >= -1.0) & (points <= size)
    points = np.maximum(points, 0)
    low = points.astype(np.int64)
    edge = low >= size - 1
    low[edge] = size - 1
    points = np.where(edge, f32(size - 1), points)
    high = np.where(edge, low, low + 1)
    frac = (points - low).astype(np.float64)
    weights = np.bincount(low, np.where(valid, 1. - frac, 0.), minlength=size)
    weights += np.bincount(high, np.where(valid, frac, 0.), minlength=size)
    return weights / grid


@functools.lru_cache(maxsize=4096)
def _weights(box: Tuple[float, float, float, float], input_hw: Tuple[int, int],
             grid_hw: Tuple[int, int]) -> torch.Tensor:
    x1, y1, x2, y2 = box
    (in_h, in_w), (h, w) = input_hw, grid_hw
    wy = _axis_weights(y1, y2, h / in_h, h)
    wx = _axis_weights(x1, x2, w / in_w, w)
    # a tensor cached while inference mode is on (a first call from a visualisation) would be
    # an inference tensor, which no later training step could save for backward
    with torch.inference_mode(False):
        return torch.from_numpy(np.outer(wy, wx).astype(np.float32))


def roi_align_1x1_weights(box: Sequence[float], input_hw: Tuple[int, int],
                          grid_hw: Tuple[int, int]) -> torch.Tensor:
    """``(h, w)`` float32 CPU tensor ``W`` with ``RoIAlign_1x1(F, box) = sum(W * F)`` per
    channel. Cached per box and sizes (boxes repeat on small inputs): treat it as read-only.

    Args:
        box: ``(x1, y1, x2, y2)`` in input pixels (x along the width).
        input_hw: ``(H, W)`` of the input the box lives in.
        grid_hw: ``(h, w)`` of the feature map; the scale is ``h / H`` and ``w / W`` per axis
            (one ``spatial_scale = w / W`` in RoIAlign when the two agree).
    """
    return _weights(tuple(float(v) for v in box), tuple(input_hw), tuple(grid_hw))
