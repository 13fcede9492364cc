"""PyramidNet for CIFAR (Han, Kim and Kim, "Deep Pyramidal Residual Networks", CVPR 2017).

The RecursiveMix paper trains PyramidNet-200 (alpha 240) on CIFAR-10 (its Table 1 and 4) and
PyramidNet-164 (alpha 270) on CIFAR-100 (its Tables 2 and 3). MMPretrain has no PyramidNet,
so this is a port of the implementation the CutMix authors used (``clovaai/CutMix-PyTorch``
``pyramidnet.py``, itself from ``dyhan0920/PyramidNet-PyTorch``), which is also the one in the
RM reference code. The module names (``conv1``, ``bn1``, ``layer1..3``, ``bn_final`` and the
block internals) are kept, so the official CIFAR checkpoints of those repos load into the
backbone after stripping their ``module.`` prefix and ``fc.*``.

Config examples (``mmpretrain.models.ImageClassifier``; the pooled width is
``backbone.out_channels[-1]``)::

    # PyramidNet-164, alpha 270, bottleneck: 1144 channels at 8x8.
    # 27,319,071 parameters with a CIFAR-100 linear head, as the reference implementation.
    backbone=dict(type='PyramidNet', depth=164, alpha=270, bottleneck=True)
    head=dict(type='LinearClsHead', num_classes=100, in_channels=1144)

    # PyramidNet-200, alpha 240, bottleneck: 1024 channels at 8x8.
    # 26,752,702 parameters with a CIFAR-10 linear head, as the reference implementation.
    # drop_path_rate > 0 gives the stochastic-depth row of RM's Table 1 (whose rate the
    # paper does not state).
    backbone=dict(type='PyramidNet', depth=200, alpha=240, bottleneck=True)
    head=dict(type='LinearClsHead', num_classes=10, in_channels=1024)

    # Small variant for CPU demos, tests and benchmarks: basic blocks (widths 32/48/64),
    # 64 channels at 8x8. 0.31M parameters with a CIFAR-10 linear head (0.32M with CIFAR-100),
    # about ResNet-20's size. One SGD training step (forward + backward + update) on a
    # 64x3x32x32 batch measured 0.47 s with 1 CPU thread (median of 12 steps, both wall and
    # CPU time; Xeon, torch 2.14 CPU, on a shared 2-core machine). With 2 threads the same
    # machine, busy with other jobs (load ~6), gave only contention-bound numbers (1.4-4 s).
    backbone=dict(type='PyramidNet', depth=20, alpha=48, bottleneck=False)
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64)
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS

from ..utils.options import check_number
from .freezing import FreezeStagesMixin, freeze


def _add_zero_padded_shortcut(residual: torch.Tensor,
                              shortcut: torch.Tensor) -> torch.Tensor:
    """``residual + [shortcut, 0]``: PyramidNet's parameter-free identity shortcut.

    The residual branch is wider than its input (the width grows in every block), so the
    shortcut is padded with zero channels at the end instead of being projected. The reference
    code builds the zeros with ``torch.cuda.FloatTensor``; ``F.pad`` is the same thing on any
    device and dtype.
    """
    extra = residual.size(1) - shortcut.size(1)
    if extra > 0:
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, extra))
    return residual + shortcut


class PyramidBasicBlock(nn.Module):
    """Pre-activation pyramidal basic block: BN-conv3x3-BN-ReLU-conv3x3-BN (+ shortcut).

    No ReLU after the addition and none before the first convolution: Han et al. found that
    removing the first ReLU and adding a BN at the end of the branch works best (their Fig. 6d).

    Args:
        in_channels (int): Input channels.
        planes (int): Channels of both convolutions (the output width).
        stride (int): Stride of the first convolution; stride 2 also average-pools the shortcut.
        drop_path_rate (float): Stochastic-depth probability of dropping the residual branch.
    """
    expansion = 1

    def __init__(self,
                 in_channels: int,
                 planes: int,
                 stride: int = 1,
                 drop_path_rate: float = 0.):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(
            in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        # A 2x2 average pool (ceil mode, as the reference) keeps the shortcut parameter-free.
        self.downsample = nn.AvgPool2d(
            2, stride=2, ceil_mode=True) if stride != 1 else None
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.drop_path(self.bn3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return _add_zero_padded_shortcut(out, shortcut)


class PyramidBottleneck(nn.Module):
    """Pre-activation pyramidal bottleneck block.

    BN-conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1(x4)-BN (+ zero-padded shortcut); the
    output has ``4 * planes`` channels.

    Args:
        in_channels (int): Input channels.
        planes (int): Channels of the 1x1 and 3x3 convolutions.
        stride (int): Stride of the 3x3 convolution; stride 2 also average-pools the shortcut.
        drop_path_rate (float): Stochastic-depth probability of dropping the residual branch.
    """
    expansion = 4

    def __init__(self,
                 in_channels: int,
                 planes: int,
                 stride: int = 1,
                 drop_path_rate: float = 0.):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.out_channels, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(self.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.AvgPool2d(
            2, stride=2, ceil_mode=True) if stride != 1 else None
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        out = self.drop_path(self.bn4(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return _add_zero_padded_shortcut(out, shortcut)


@MODELS.register_module()
class PyramidNet(FreezeStagesMixin, BaseBackbone):
    """PyramidNet for 32x32 inputs (CIFAR).

    `Deep Pyramidal Residual Networks <https://arxiv.org/abs/1610.02915>`_ (Han, Kim and Kim,
    CVPR 2017), following the implementation of `CutMix <https://arxiv.org/abs/1905.04899>`_
    (``clovaai/CutMix-PyTorch``) used by the RecursiveMix paper.

    Architecture: a 3x3 stride-1 stem convolution with 16 channels + BN (no ReLU, no pooling),
    then 3 stages of ``n`` blocks each (``n = (depth - 2) / 6`` for basic blocks,
    ``(depth - 2) / 9`` for bottlenecks), strides 1, 2, 2. The width grows additively by
    ``addrate = alpha / (3 * n)`` per block: a running (float) width ``w`` starts at 16, block
    ``k`` has ``round(w_k)`` planes with ``w_k = 16 + k * addrate`` and outputs
    ``round(w_k) * expansion`` channels; the last block therefore has ``16 + alpha`` planes.
    Shortcuts are identities zero-padded to the wider residual, average-pooled 2x2 where the
    block has stride 2. A final BN + ReLU closes the network before global pooling; it is part
    of the last stage here, so the last output is the activated map that a classifier pools
    (and that RecursiveMix's RoI head samples).

    Shapes for an ``(N, 3, 32, 32)`` input: stage 0 ``(N, C0, 32, 32)``, stage 1
    ``(N, C1, 16, 16)``, stage 2 ``(N, C2, 8, 8)`` with ``out_channels = [C0, C1, C2]``,
    e.g. ``[424, 784, 1144]`` for depth 164 / alpha 270 / bottleneck. Any input size works;
    the output stride is 4.

    Args:
        depth (int): Total depth (weighted layers incl. stem and classifier):
            ``6n + 2`` with basic blocks, ``9n + 2`` with bottlenecks.
        alpha (float): Total widening factor (widen amount over all blocks).
        bottleneck (bool): Use bottleneck blocks (expansion 4) instead of basic blocks.
            Defaults to False.
        in_channels (int): Input image channels. Defaults to 3.
        base_channels (int): Stem width, the width before the first block. Defaults to 16.
        drop_path_rate (float): Stochastic depth (Huang et al., ECCV 2016) on each block's
            residual branch. Linear rule of that paper: block ``l`` of ``L`` (1-based) drops
            its branch with probability ``drop_path_rate * l / L``. Defaults to 0.
        out_indices (Sequence[int] | int): Stages (0..2) whose outputs are returned.
            Defaults to ``(2, )``.
        frozen_stages (int): Stages to freeze (requires_grad False and eval mode), as in
            mmpretrain's ResNet: -1 freezes nothing, 0 the stem, ``k`` the stem and the
            first ``k`` stages (the last stage includes ``bn_final``). Defaults to -1.
        norm_eval (bool): Keep all BN layers in eval mode while training (frozen running
            statistics). Defaults to False.
        init_cfg (dict | list[dict], optional): Defaults to Kaiming normal (fan_out, ReLU) for
            convolutions, which equals the reference ``normal(0, sqrt(2 / (k * k * C_out)))``,
            and weight 1 / bias 0 for BN.
    """

    def __init__(self,
                 depth: int,
                 alpha: float,
                 bottleneck: bool = False,
                 in_channels: int = 3,
                 base_channels: int = 16,
                 drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = (2, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        super().__init__(init_cfg=init_cfg)
        self.num_stages = 3
        block = PyramidBottleneck if bottleneck else PyramidBasicBlock
        divisor = 9 if bottleneck else 6
        rule = f'{divisor}n + 2 with bottleneck={bottleneck}'
        if check_number('PyramidNet', 'depth', depth, divisor + 2, integer=True,
                        hint=rule) % divisor != 2 % divisor:
            raise ValueError(f'PyramidNet: depth must be {rule} (n >= 1), got {depth}')
        for name, value in (('alpha', alpha), ('in_channels', in_channels),
                            ('base_channels', base_channels)):
            check_number('PyramidNet', name, value, 0 if name == 'alpha' else 1,
                         integer=name != 'alpha')
        check_number('PyramidNet', 'drop_path_rate', drop_path_rate, 0, 1, high_open=True)
        self.depth = depth
        self.alpha = alpha
        self.bottleneck = bottleneck
        self.blocks_per_stage = n = (depth - 2) // divisor
        self.addrate = alpha / (3 * n)

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out_indices = [i + self.num_stages if i < 0 else i for i in out_indices]
        assert all(0 <= i < self.num_stages for i in out_indices), \
            f'out_indices must be in [0, {self.num_stages}), got {out_indices}'
        self.out_indices = tuple(out_indices)
        assert -1 <= frozen_stages <= self.num_stages, frozen_stages
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.conv1 = nn.Conv2d(
            in_channels, base_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)

        num_blocks = 3 * n
        # Huang et al.'s linear decay: the l-th of L blocks (1-based) drops with p * l / L.
        dpr = [drop_path_rate * (i + 1) / num_blocks for i in range(num_blocks)]
        # The running width stays a float and is rounded per block, exactly like the
        # reference: rounding the increment instead would change the widths (and counts).
        width = float(base_channels)
        channels = base_channels
        self.out_channels = []
        block_idx = 0
        for stage in range(self.num_stages):
            blocks = []
            for i in range(n):
                width += self.addrate
                blocks.append(
                    block(
                        channels,
                        int(round(width)),
                        stride=2 if (stage > 0 and i == 0) else 1,
                        drop_path_rate=dpr[block_idx]))
                channels = blocks[-1].out_channels
                block_idx += 1
            self.add_module(f'layer{stage + 1}', nn.Sequential(*blocks))
            self.out_channels.append(channels)
        self.feat_dim = channels

        # Pre-activation blocks leave the sum un-normalised: BN + ReLU before pooling.
        self.bn_final = nn.BatchNorm2d(channels)
        self.relu_final = nn.ReLU(inplace=True)

        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.bn1(self.conv1(x))
        outs = []
        for stage in range(self.num_stages):
            x = getattr(self, f'layer{stage + 1}')(x)
            if stage == self.num_stages - 1:
                x = self.relu_final(self.bn_final(x))
            if stage in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        modules = []
        if self.frozen_stages >= 0:
            modules += [self.conv1, self.bn1]
        for i in range(1, self.frozen_stages + 1):
            modules.append(getattr(self, f'layer{i}'))
        if self.frozen_stages >= self.num_stages:
            modules.append(self.bn_final)
        freeze(modules)
