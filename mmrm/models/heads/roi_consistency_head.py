"""RoI consistency head of RecursiveMix (paper Eq. 4-5)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

#: implementations of the 1x1 RoIAlign; both compute the same average of bilinear samples
ROI_BACKENDS = ('mmcv', 'torchvision')


@MODELS.register_module()
class RoIConsistencyHead(BaseModule):
    r"""Predicts the pasted history from the current feature map and aligns it with history.

    Eq. (4): :math:`\tilde p^t_{roi} = H'(\mathrm{RoIAlign}_{1\times1}(F(\tilde x^t), B))`;
    Eq. (5), the consistency term:
    :math:`\omega\,\lambda\,\mathrm{KL}(\mathrm{softmax}(p^h)\,\|\,\mathrm{softmax}(\tilde p^t_{roi}))`.

    Shapes: feature map ``(N, C, h, w)`` of an input ``(N, 3, H, W)``; boxes ``(N, 4)`` as
    ``(x1, y1, x2, y2)`` in input pixels; RoIAlign with output 1x1, ``aligned=True`` and
    adaptive sampling (``sampling_ratio=0``) at ``spatial_scale = w / W``; logits ``(N, K)``.

    Args:
        num_classes (int): K, must equal the main head's.
        in_channels (int): C of the last feature map, must equal the backbone's.
        omega (float): weight of the consistency loss (0.1 CIFAR, 0.5 ImageNet); 0 turns the
            loss off (the "no CL" ablation) while keeping every parameter in the graph.
        share_fc (bool): reuse the main head's ``fc`` as H' instead of an own linear layer
            (paper Table 4a; default False, unshared). With sharing this head has no
            parameters and the classifier passes the main fc to :meth:`forward`.
        roi_backend (str): which RoIAlign pools the box: ``'mmcv'`` (default,
            ``mmcv.ops.roi_align``, needs mmcv's compiled ops for the training device) or
            ``'torchvision'`` (``torchvision.ops.roi_align``, for a stack without compiled mmcv
            ops, e.g. a new torch on GPU). Same arguments, same values (tested).
        init_cfg (dict): initialisation of the own fc, as mmpretrain's LinearClsHead.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 omega: float = 0.1,
                 share_fc: bool = False,
                 roi_backend: str = 'mmcv',
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01)):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f'RoIConsistencyHead: {name} must be a positive int, '
                                 f'got {value!r}')
        if isinstance(omega, bool) or not isinstance(omega, (int, float)) or omega < 0:
            raise ValueError(f'RoIConsistencyHead: omega must be a number >= 0 (0 disables the '
                             f'consistency loss), got {omega!r}')
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
                    "or set roi_head.roi_backend='torchvision'") from exc
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.omega = float(omega)
        self.share_fc = share_fc
        self.roi_backend = roi_backend
        self.fc = None if share_fc else nn.Linear(in_channels, num_classes)

    def pool(self, feat: torch.Tensor, boxes: torch.Tensor,
             img_shape: Tuple[int, int]) -> torch.Tensor:
        """1x1 RoIAlign of ``feat`` (N, C, h, w) at ``boxes`` (N, 4); returns (N, C)."""
        if feat.size(1) != self.in_channels:
            raise ValueError(f'RoIConsistencyHead: in_channels={self.in_channels} but the last '
                             f'feature map has {feat.size(1)} channels')
        if feat.dtype not in (torch.float32, torch.float64):
            # mmcv's RoIAlign has no bf16 kernels (and no fp16 on CPU); the last map is small.
            feat = feat.float()
        n = feat.size(0)
        batch_idx = torch.arange(n, device=feat.device, dtype=feat.dtype).unsqueeze(1)
        rois = torch.cat([batch_idx, boxes.to(feat.dtype)], dim=1)
        spatial_scale = feat.size(-1) / float(img_shape[-1])
        # mmcv's kernels index the raw memory: a strided map (e.g. PVTv2's NLC->NCHW view,
        # channels_last) would be read as garbage.
        feat = feat.contiguous()
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
                    f"{feat.device.type}; set roi_head.roi_backend='torchvision' or build "
                    'mmcv with ops for this device') from exc
        else:
            from torchvision.ops import roi_align
            pooled = roi_align(feat, rois, (1, 1), spatial_scale, 0, True)
        return pooled.flatten(1)

    def forward(self, feat: torch.Tensor, boxes: torch.Tensor, img_shape: Tuple[int, int],
                fc: Optional[nn.Module] = None) -> torch.Tensor:
        """Logits of the pasted box, (N, K). ``fc`` is the main head's fc when sharing."""
        if self.share_fc and fc is None:
            raise ValueError('RoIConsistencyHead(share_fc=True) needs the main fc')
        return (fc if self.share_fc else self.fc)(self.pool(feat, boxes, img_shape))

    def loss(self, roi_logits: torch.Tensor, hist_logits: torch.Tensor,
             lam: torch.Tensor) -> torch.Tensor:
        """``omega * mean_i(lam_i * KL(softmax(p_h_i) || softmax(z_roi_i)))``, temperature 1.

        Computed in float32 (safe under autocast). ``lam`` is (N,); with one box per batch
        this is exactly Eq. (5)'s ``omega * lam * KL`` with the batch-mean KL.
        """
        log_q = F.log_softmax(roi_logits.float(), dim=1)
        log_p = F.log_softmax(hist_logits.float(), dim=1)
        kl = (log_p.exp() * (log_p - log_q)).sum(dim=1)
        return self.omega * (lam.float() * kl).mean()
