"""DropBlock (Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional
networks", NeurIPS 2018), as the authors' TPU ResNet code runs it."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

from ..utils.options import check_number

SCHEDULES = ('linear', 'constant')


@MODELS.register_module()
class DropBlock(nn.Module):
    r"""Drop contiguous ``block_size x block_size`` regions of each feature map (Algorithm 1).

    For ``x`` (N, C, H, W) in training, with the block clamped to the map
    (:math:`b_h = \min(b, H)`, :math:`b_w = \min(b, W)`) and the current drop rate
    :math:`p` (1 - keep_prob):

    .. math::
        \gamma = \frac{p}{b_h b_w}\,\frac{HW}{(H - b_h + 1)(W - b_w + 1)}\quad\text{(Eq. 1)}

    seeds :math:`z \sim \mathrm{Bernoulli}(\gamma)` are drawn independently for every sample,
    channel and block position that keeps the block inside the map; every pixel covered by a
    block of a seed is zeroed (mask :math:`M`), and the output is
    :math:`x \odot M \cdot \mathrm{numel}(M) / \mathrm{sum}(M)`, the kept fraction counted over
    the whole batch. Evaluation (and :math:`p = 0`) is the identity.

    Schedule (``'linear'``, the paper's Sec. 3 "Scheduled DropBlock" and the authors' code):
    :math:`p_t = p \cdot t / T` with the runner's iteration ``t`` and ``T = max_iters``, read
    from MMEngine's message hub (so a resumed run continues the schedule). Outside a Runner
    (no ``max_iters`` in the hub) the rate is the final ``drop_prob``. ``'constant'`` always
    uses ``drop_prob``.

    MMDetection's ``DropBlock`` implements the same mask for odd block sizes only, counts its
    own warm-up calls (lost on resume) and fails on maps smaller than the block; the CIFAR
    setting (block 4) and ResNet-50's 7x7 last stage at 224 (block 7 = the whole map, where the
    authors' code clamps) need what is here. No parameters or buffers: adding it never changes a
    checkpoint's keys.

    Args:
        drop_prob (float): final drop rate :math:`p = 1 - \text{keep\_prob}`, in [0, 1).
        block_size (int): block side, >= 1 (7 on ImageNet, 4 in CutMix's CIFAR runs).
        schedule (str): ``'linear'`` (default) or ``'constant'``.
    """

    def __init__(self, drop_prob: float, block_size: int, schedule: str = 'linear'):
        super().__init__()
        check_number('DropBlock', 'drop_prob', drop_prob, 0, 1, high_open=True,
                     hint='1 - keep_prob')
        check_number('DropBlock', 'block_size', block_size, 1, integer=True)
        if schedule not in SCHEDULES:
            raise ValueError(f'DropBlock: schedule must be one of {SCHEDULES}, got {schedule!r}')
        self.drop_prob = float(drop_prob)
        self.block_size = block_size
        self.schedule = schedule

    def current_drop_prob(self) -> float:
        """The drop rate of this training iteration."""
        if self.schedule == 'constant':
            return self.drop_prob
        hub = MessageHub.get_current_instance()
        max_iters = hub.get_info('max_iters')
        if not max_iters:
            return self.drop_prob
        return self.drop_prob * min(hub.get_info('iter', 0) / max_iters, 1.)

    def block_mask(self, x: torch.Tensor, drop_prob: float) -> torch.Tensor:
        """The 0/1 keep mask :math:`M` of ``x``'s shape for rate ``drop_prob``."""
        n, c, h, w = x.shape
        bh, bw = min(self.block_size, h), min(self.block_size, w)
        gamma = drop_prob / (bh * bw) * (h * w) / ((h - bh + 1) * (w - bw + 1))
        # One seed per block position inside the map (its top-left corner) ...
        seeds = torch.bernoulli(
            torch.full((n, c, h - bh + 1, w - bw + 1), gamma, device=x.device))
        # ... and a pixel is dropped when any block covering it has a seed: a max over the
        # bh x bw corners above-left of it (zero padding outside the valid corners).
        dropped = F.max_pool2d(F.pad(seeds, (bw - 1, bw - 1, bh - 1, bh - 1)), (bh, bw),
                               stride=1)
        return 1. - dropped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'DropBlock drops square blocks of (N, C, H, W) feature maps; got '
                             f'shape {tuple(x.shape)}: place it after a convolution (stages of '
                             'a CNN backbone), not on tokens or pooled features')
        if not self.training:
            return x
        drop_prob = self.current_drop_prob()
        if drop_prob <= 0:
            return x
        mask = self.block_mask(x, drop_prob).to(x.dtype)
        return x * mask * (mask.numel() / mask.sum().clamp_min(1.))

    def apply_to_output(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: this layer on another module's output. A bound method, not a closure:
        a deep copy of the model (EMA, SWA) then hooks the copy's own layer, and it pickles."""
        return self(output)

    def extra_repr(self) -> str:
        return (f'drop_prob={self.drop_prob}, block_size={self.block_size}, '
                f"schedule='{self.schedule}'")
