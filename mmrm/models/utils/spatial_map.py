"""A feature map as the RoI branch sees it, whatever layout the network keeps it in."""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

#: how a map's dims are laid out: ``nchw`` (a CNN map, any memory format), ``nhwc`` (a
#: channels-last map), ``nlc`` (a token sequence, ``num_extra_tokens`` class/distillation tokens
#: first, then the patch tokens row by row) and ``ncl`` (tokens, channels first)
LAYOUTS = ('nchw', 'nhwc', 'nlc', 'ncl')


def infer_grid(num_positions: int, input_hw: Tuple[int, int]) -> Tuple[int, int]:
    """The ``(h, w)`` grid of ``num_positions`` flattened positions of a map whose input was
    ``input_hw``: the factor pair of ``num_positions`` whose aspect ratio is closest to the
    input's (networks downsample both sides alike)."""
    in_h, in_w = input_hw
    best = None
    for h in range(1, int(math.isqrt(num_positions)) + 1):
        if num_positions % h:
            continue
        for gh in (h, num_positions // h):
            gw = num_positions // gh
            err = abs(math.log((gh / gw) / (in_h / in_w)))
            if best is None or err < best[0]:
                best = (err, gh, gw)
    return best[1], best[2]


@dataclass
class SpatialMap:
    """One feature map of a batch, ``(N, C, h, w)`` in spirit.

    Args:
        tensor: the map as the network produced it, laid out as ``layout``.
        layout: one of :data:`LAYOUTS`.
        grid_hw: ``(h, w)`` of the spatial grid (for token layouts: of the patch tokens).
        num_extra_tokens: leading non-spatial tokens of an ``nlc`` sequence (class and
            distillation tokens), excluded from pooling.
    """
    tensor: torch.Tensor
    layout: str
    grid_hw: Tuple[int, int]
    num_extra_tokens: int = 0

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, layout: Optional[str], input_hw: Tuple[int, int],
                    grid_hw: Optional[Tuple[int, int]] = None,
                    num_extra_tokens: int = 0) -> 'SpatialMap':
        """Wrap ``tensor``; ``layout=None`` reads it from the rank (4: ``nchw``, 3: ``ncl``, the
        input of a 1-d pooling); a token grid not given is inferred from the input's aspect."""
        if layout is None:
            layout = {4: 'nchw', 3: 'ncl'}.get(tensor.dim())
            if layout is None:
                raise ValueError('SpatialMap: a feature map must have 3 (tokens) or 4 (N, C, h, '
                                 f'w) dims, got shape {tuple(tensor.shape)}')
        if layout not in LAYOUTS:
            raise ValueError(f'SpatialMap: layout must be one of {LAYOUTS}, got {layout!r}')
        if grid_hw is None:
            if layout == 'nchw':
                grid_hw = tuple(tensor.shape[-2:])
            elif layout == 'nhwc':
                grid_hw = tuple(tensor.shape[1:3])
            else:
                positions = tensor.size(1 if layout == 'nlc' else 2) - num_extra_tokens
                grid_hw = infer_grid(positions, input_hw)
        return cls(tensor, layout, tuple(int(v) for v in grid_hw), int(num_extra_tokens))

    @property
    def channels(self) -> int:
        return self.tensor.size(1 if self.layout in ('nchw', 'ncl') else -1)

    def _positions(self) -> torch.Tensor:
        """The spatial positions as ``(N, h*w, C)`` or ``(N, C, h*w)`` views, no copy."""
        t = self.tensor
        if self.layout == 'nlc':
            return t[:, self.num_extra_tokens:]
        return t

    def weighted_sum(self, weights: torch.Tensor) -> torch.Tensor:
        """``sum_{y,x} weights[y, x] * map[:, :, y, x]``: ``(h, w)`` weights -> ``(N, C)``.
        One contraction whatever the layout (no copy of a strided or token map)."""
        h, w = self.grid_hw
        t = self._positions()
        weights = weights.to(t.dtype)
        if self.layout == 'nchw':
            if t.is_contiguous():  # the common case: one matrix-vector product, no einsum
                return t.flatten(2).matmul(weights.reshape(h * w))
            return torch.einsum('nchw,hw->nc', t, weights)
        if self.layout == 'nhwc':
            return torch.einsum('nhwc,hw->nc', t, weights)
        if self.layout == 'nlc':
            return torch.einsum('nlc,l->nc', t, weights.reshape(h * w))
        return torch.einsum('ncl,l->nc', t, weights.reshape(h * w))

    def to_nchw(self) -> torch.Tensor:
        """The map as ``(N, C, h, w)`` (a view where the layout allows), for RoIAlign kernels."""
        h, w = self.grid_hw
        t = self._positions()
        if self.layout == 'nchw':
            return t
        if self.layout == 'nhwc':
            return t.permute(0, 3, 1, 2)
        if self.layout == 'nlc':
            return t.transpose(1, 2).reshape(t.size(0), t.size(2), h, w)
        return t.reshape(t.size(0), t.size(1), h, w)
