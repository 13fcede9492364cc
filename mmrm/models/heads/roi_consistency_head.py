"""RoI consistency head of RecursiveMix (paper Eq. 4-5)."""
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils import SpatialMap, roi_align_1x1_weights, to_device_async
from ..utils.options import check_number

#: how the 1x1 RoIAlign is computed: 'matmul' (one contraction with host-built weights, exact
#: for RM's one box per batch), or the RoIAlign kernels of mmcv or torchvision (same values)
ROI_BACKENDS = ('matmul', 'mmcv', 'torchvision')

Box = Sequence[float]


@MODELS.register_module()
class RoIConsistencyHead(BaseModule):
    r"""Predicts the pasted history from the current feature map and aligns it with history.

    Eq. (4): :math:`\tilde p^t_{roi} = H'(\mathrm{RoIAlign}_{1\times1}(F(\tilde x^t), B))`;
    Eq. (5), the consistency term:
    :math:`\omega\,\lambda\,\mathrm{KL}(\mathrm{softmax}(p^h)\,\|\,\mathrm{softmax}(\tilde p^t_{roi}))`.

    Shapes: a feature map ``(N, C, h, w)`` in any of the layouts of
    :class:`~mmrm.models.utils.SpatialMap` (a CNN map, a channels-last map, a token sequence
    with or without class tokens) of an input ``(N, 3, H, W)``; ONE box ``(x1, y1, x2, y2)`` in
    input pixels for the whole batch (RM pastes one box per batch); RoIAlign with output 1x1,
    ``aligned=True`` and adaptive sampling (``sampling_ratio=0``) at scale ``h / H``; logits
    ``(N, K)``.

    With one box per batch the 1x1 RoIAlign is the same weighted sum of every sample's map, so
    ``roi_backend='matmul'`` (default) computes it as one contraction with weights built on the
    host from the box (:func:`~mmrm.models.utils.roi_align_1x1_weights`): equal to mmcv's and
    torchvision's RoIAlign (tested), a few kernels, no RoI tensor, no device synchronisation.

    Under ``torch.compile`` the box must reach compiled code as tensor data, never as the
    Python ints dynamo would specialise on (one graph per box): :meth:`prepare` builds, on the
    host and outside the compiled region, what :meth:`forward` pools with (``roi``).

    Args:
        num_classes (int): K, must equal the main classifier's.
        in_channels (int): C of the pooled feature map.
        omega (float): weight of the consistency loss (0.1 CIFAR, 0.5 ImageNet); 0 turns the
            loss off (the "no CL" ablation) while keeping every parameter in the graph.
        share_fc (bool): reuse the main classifier's final linear layer as H' instead of an own
            one (paper Table 4a; default False, unshared). With sharing this head has no
            parameters and the classifier passes the main layer to :meth:`forward`.
        roi_backend (str): one of :data:`ROI_BACKENDS`: ``'matmul'`` (default, no compiled
            ops needed), ``'mmcv'`` (``mmcv.ops.roi_align``, needs mmcv's compiled ops for the
            training device) or ``'torchvision'`` (``torchvision.ops.roi_align``).
        init_cfg (dict): initialisation of the own fc, as mmpretrain's LinearClsHead.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 omega: float = 0.1,
                 share_fc: bool = False,
                 roi_backend: str = 'matmul',
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01)):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels)):
            check_number('RoIConsistencyHead', name, value, 1, integer=True)
        check_number('RoIConsistencyHead', 'omega', omega, 0)  # 0 disables the loss
        if not isinstance(share_fc, bool):
            raise ValueError(f'RoIConsistencyHead: share_fc must be True or False, '
                             f'got {share_fc!r}')
        if roi_backend not in ROI_BACKENDS:
            raise ValueError(f'RoIConsistencyHead: roi_backend must be one of {ROI_BACKENDS}, '
                             f'got {roi_backend!r}')
        if roi_backend == 'mmcv':
            try:
                from mmcv.ops import roi_align  # noqa: F401
            except (ImportError, OSError) as exc:  # mmcv-lite, or ops built for another torch
                raise ImportError(
                    "RoIConsistencyHead(roi_backend='mmcv') needs mmcv's compiled ops "
                    f'(mmcv.ops failed to import: {exc}); build mmcv with ops (make install) '
                    "or set roi_head.roi_backend='matmul' (default) or 'torchvision'") from exc
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.omega = float(omega)
        self.share_fc = share_fc
        self.roi_backend = roi_backend
        self.fc = None if share_fc else nn.Linear(in_channels, num_classes)

    def prepare(self, box: Box, input_hw: Tuple[int, int], grid_hw: Tuple[int, int], n: int,
                device: torch.device) -> torch.Tensor:
        """``roi`` of :meth:`pool` for ``box`` on an ``(h, w) = grid_hw`` map of ``n``
        samples, built on the host: the ``(h, w)`` RoIAlign weights (``matmul``) or the
        ``(n, 5)`` float32 RoIs of the kernels."""
        if self.roi_backend == 'matmul':
            return self.roi_weights(box, input_hw, grid_hw, device)
        rois = torch.cat([torch.arange(n, dtype=torch.float32)[:, None],
                          torch.tensor([list(box)], dtype=torch.float32).expand(n, 4)], dim=1)
        return to_device_async(rois, device)

    def pool(self, fmap: Union[SpatialMap, torch.Tensor], box: Optional[Box],
             input_hw: Tuple[int, int], roi: Optional[torch.Tensor] = None) -> torch.Tensor:
        """1x1 RoIAlign of every sample's map at ``box``: ``(N, C)``. A plain tensor ``fmap``
        is an ``(N, C, h, w)`` map. ``roi`` (from :meth:`prepare`) replaces ``box``."""
        if isinstance(fmap, torch.Tensor):
            fmap = SpatialMap.from_tensor(fmap, 'nchw', input_hw)
        if fmap.channels != self.in_channels:
            raise ValueError(f'RoIConsistencyHead: in_channels={self.in_channels} but the pooled '
                             f'feature map has {fmap.channels} channels: set '
                             f'roi_head.in_channels={fmap.channels}')
        if roi is None:
            roi = self.prepare(box, input_hw, fmap.grid_hw, fmap.tensor.size(0),
                               fmap.tensor.device)
        if self.roi_backend == 'matmul':
            return fmap.weighted_sum(roi)
        return self._roi_align(fmap, roi, input_hw)

    @staticmethod
    def roi_weights(box: Box, input_hw: Tuple[int, int], grid_hw: Tuple[int, int],
                    device: torch.device) -> torch.Tensor:
        """``(h, w)`` float32 weights of the 1x1 RoIAlign at ``box`` on ``device``."""
        if box[2] <= box[0] or box[3] <= box[1]:  # nothing pasted: RoIAlign samples nothing
            return torch.zeros(grid_hw, device=device)
        return to_device_async(roi_align_1x1_weights(box, input_hw, grid_hw), device)

    def _roi_align(self, fmap: SpatialMap, rois: torch.Tensor,
                   input_hw: Tuple[int, int]) -> torch.Tensor:
        feat = fmap.to_nchw()
        if feat.dtype not in (torch.float32, torch.float64):
            # mmcv's RoIAlign has no bf16 kernels (and no fp16 on CPU); the last map is small.
            feat = feat.float()
        # mmcv's kernels index the raw memory: a strided map would be read as garbage.
        feat = feat.contiguous()
        rois = rois.to(feat.dtype)  # RM's boxes are pixel ints: exact in float32
        spatial_scale = feat.size(-1) / float(input_hw[-1])
        if self.roi_backend == 'mmcv':
            from mmcv.ops import roi_align
            try:
                pooled = roi_align(feat, rois, (1, 1), spatial_scale, 0, 'avg', True)
            except RuntimeError as exc:
                if 'not found' not in str(exc):
                    raise
                # mmcv's ops were compiled without a kernel for this device (e.g. CPU-only)
                raise RuntimeError(
                    f'{exc}\nRoIConsistencyHead: mmcv has no RoIAlign kernel for '
                    f"{feat.device.type}; set roi_head.roi_backend='matmul' (default) or "
                    "'torchvision', or build mmcv with ops for this device") from exc
        else:
            from torchvision.ops import roi_align
            pooled = roi_align(feat, rois, (1, 1), spatial_scale, 0, True)
        return pooled.flatten(1)

    def forward(self, fmap: Union[SpatialMap, torch.Tensor], box: Optional[Box],
                input_hw: Tuple[int, int], fc: Optional[nn.Module] = None,
                post_pool: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                roi: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits of the pasted box, ``(N, K)``. ``post_pool`` is what the main path applies
        to its pooled feature before the classifier (e.g. ConvNeXt's final norm); ``fc`` is the
        main classifier's final linear layer when sharing; ``roi`` as in :meth:`pool`."""
        if self.share_fc and fc is None:
            raise ValueError('RoIConsistencyHead(share_fc=True) needs the main fc')
        pooled = self.pool(fmap, box, input_hw, roi)
        if post_pool is not None:
            pooled = post_pool(pooled)
        return (fc if self.share_fc else self.fc)(pooled)

    def loss(self, roi_logits: torch.Tensor, hist_logits: torch.Tensor,
             lam: Union[float, torch.Tensor]) -> torch.Tensor:
        """``omega * lam * KL(softmax(p_h) || softmax(z_roi))`` (Eq. 5), batch mean,
        temperature 1, in float32 (safe under autocast). ``lam`` is the batch's one
        historical share: a host float (weighting needs no device tensor), or a 0-d float64
        tensor of it under ``torch.compile`` (a float would be a constant of the graph)."""
        lam = lam if isinstance(lam, torch.Tensor) else float(lam)
        return WeightedKL.apply(roi_logits, hist_logits.detach(), self.omega * lam)


class WeightedKL(torch.autograd.Function):
    r"""``w * KL(softmax(p) || softmax(z))`` averaged over the batch, with the gradient in one
    expression: :math:`\partial / \partial z = w (\mathrm{softmax}(z) - \mathrm{softmax}(p)) / N`
    (``p`` is a constant target). One autograd node instead of the chain of ``log_softmax``,
    ``kl_div`` and the weighting, so fewer kernels and less host work per step."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, p_logits: torch.Tensor,
                weight: Union[float, torch.Tensor]) -> torch.Tensor:
        log_q = F.log_softmax(z.float(), dim=1)
        log_p = F.log_softmax(p_logits.float(), dim=1)
        p = log_p.exp()
        ctx.save_for_backward(log_q, p)
        scale = weight / z.size(0)
        if isinstance(scale, torch.Tensor):  # a 0-d float64 one: a float32 factor, as a float
            scale = scale.float()
        ctx.scale, ctx.z_dtype = scale, z.dtype
        return (p * (log_p - log_q)).sum() * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        log_q, p = ctx.saved_tensors
        grad_z = (log_q.exp() - p) * (grad * ctx.scale)
        return grad_z.to(ctx.z_dtype), None, None
