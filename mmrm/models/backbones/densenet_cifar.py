"""DenseNet-BC for 32x32 inputs (CIFAR), as trained in the RecursiveMix paper's Table 3.

MMPretrain's ``DenseNet`` is the ImageNet network (7x7 stride-2 stem + max pool, output stride
32: a 1x1 map for CIFAR). The CIFAR variant the RM paper trains (its reference code,
``implus/RecursiveMix-pytorch``, and the common ``kuangliu/pytorch-cifar``) has the same dense
blocks and transitions after a single 3x3 stride-1 stem convolution with ``2 * growth``
channels and compression 0.5, so a 32x32 image ends as a 4x4 map. With a CIFAR-100 linear
head: DenseNet-121 7,048,548 and DenseNet-161 26,681,188 parameters (7.05M / 26.68M). It reuses mmpretrain's ``DenseBlock`` / ``DenseTransition``, so the
parameter names follow mmpretrain's ``DenseNet`` (``stages.*``, ``transitions.*``) except the
stem, which is a single convolution here.

Config examples (``mmpretrain.models.ImageClassifier``)::

    # DenseNet-121 (BC, k=32): 1024 channels at 4x4; 7.05M params with a CIFAR-100 head.
    backbone=dict(type='DenseNetCIFAR', arch='121')
    head=dict(type='LinearClsHead', num_classes=100, in_channels=1024)

    # DenseNet-161 (BC, k=48): 2208 channels at 4x4; 26.68M params with a CIFAR-100 head.
    backbone=dict(type='DenseNetCIFAR', arch='161')
    head=dict(type='LinearClsHead', num_classes=100, in_channels=2208)
"""
import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks import build_activation_layer, build_norm_layer
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.densenet import DenseBlock, DenseTransition
from mmpretrain.registry import MODELS

from ..utils.options import check_number, check_numbers
from .freezing import FreezeStagesMixin, freeze


@MODELS.register_module()
class DenseNetCIFAR(FreezeStagesMixin, BaseBackbone):
    """DenseNet-BC for CIFAR.

    `Densely Connected Convolutional Networks <https://arxiv.org/abs/1608.06993>`_ (Huang,
    Liu, van der Maaten and Weinberger, CVPR 2017), in the CIFAR form used by the
    RecursiveMix paper (Table 3) and by ``kuangliu/pytorch-cifar``.

    Architecture:

    - stem: one 3x3 stride-1 convolution to ``2 * growth_rate`` channels; no BN, ReLU or
      pooling (every dense layer starts with its own BN-ReLU);
    - 4 dense blocks of bottleneck layers ``BN-ReLU-conv1x1(bn_size * k)-BN-ReLU-conv3x3(k)``,
      each layer's ``k`` new channels concatenated to its input;
    - between blocks, transitions ``BN-ReLU-conv1x1(floor(C * compression))-avgpool 2x2``;
    - after the last block, BN + ReLU (the map the classifier pools and RM's RoI head samples).

    Outputs: stage ``i`` returns the map after its transition (as mmpretrain's ``DenseNet``),
    i.e. for an ``(N, 3, 32, 32)`` input and arch ``'121'``: stage 0 ``(N, 128, 16, 16)``,
    stage 1 ``(N, 256, 8, 8)``, stage 2 ``(N, 512, 4, 4)``, stage 3 ``(N, 1024, 4, 4)``
    (output stride 8). ``out_channels`` lists the widths of the four stage outputs.

    Args:
        arch (str | dict): ``'121'`` (blocks 6/12/24/16, growth 32), ``'161'`` (6/12/36/24,
            growth 48), ``'169'``, ``'201'``; or a dict with ``growth_rate`` and ``depths``
            and optionally ``init_channels`` (stem width, default ``2 * growth_rate``).
            Defaults to ``'121'``.
        in_channels (int): Input image channels. Defaults to 3.
        bn_size (int): Width of the bottleneck 1x1 conv in units of growth rate. Defaults to 4.
        drop_rate (float): Dropout after every dense layer's 3x3 conv. Defaults to 0.
        compression_factor (float): Transition width ratio (the "C" of BC). Defaults to 0.5.
        transition_act (bool): ReLU between the BN and the conv of each transition, as the
            DenseNet paper and ``pytorch-cifar``. The RM authors' reference code
            (``implus/RecursiveMix-pytorch``, ``models_cifar/densenet.py``) omits it
            (BN-conv-pool); set False to reproduce that exactly. It has no parameters, so
            checkpoints are interchangeable. Defaults to True.
        memory_efficient (bool): Gradient checkpointing inside the dense layers.
            Defaults to False.
        out_indices (Sequence[int] | int): Stages (0..3) whose outputs are returned.
            Defaults to ``(3, )``.
        frozen_stages (int): As mmpretrain's ``DenseNet``: 0 freezes nothing, ``k`` freezes
            the stem and the first ``k`` stages with their transitions. Defaults to 0.
        norm_eval (bool): Keep BN layers in eval mode while training. Defaults to False.
        init_cfg (dict | list[dict], optional): Defaults to Kaiming normal for convolutions
            and weight 1 / bias 0 for BN.
    """
    arch_settings = {
        '121': dict(growth_rate=32, depths=[6, 12, 24, 16]),
        '169': dict(growth_rate=32, depths=[6, 12, 32, 32]),
        '201': dict(growth_rate=32, depths=[6, 12, 48, 32]),
        '161': dict(growth_rate=48, depths=[6, 12, 36, 24]),
    }

    def __init__(self,
                 arch: Union[str, dict] = '121',
                 in_channels: int = 3,
                 bn_size: int = 4,
                 drop_rate: float = 0.,
                 compression_factor: float = 0.5,
                 transition_act: bool = True,
                 memory_efficient: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 out_indices: Union[int, Sequence[int]] = (3, ),
                 frozen_stages: int = 0,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            assert arch in self.arch_settings, \
                f'Unavailable arch {arch!r}, choose from ' \
                f'{set(self.arch_settings)} or pass a dict.'
            arch = self.arch_settings[arch]
        else:
            assert isinstance(arch, dict) and \
                {'growth_rate', 'depths'} <= set(arch), \
                'A custom arch needs a dict with growth_rate and depths'
        self.growth_rate = check_number('DenseNetCIFAR', 'growth_rate', arch['growth_rate'], 1,
                                        integer=True)
        self.depths = list(check_numbers('DenseNetCIFAR', 'depths', arch['depths'], 1,
                                         integer=True))
        for name, value in (('in_channels', in_channels), ('bn_size', bn_size)):
            check_number('DenseNetCIFAR', name, value, 1, integer=True)
        check_number('DenseNetCIFAR', 'drop_rate', drop_rate, 0, 1, high_open=True)
        check_number('DenseNetCIFAR', 'compression_factor', compression_factor, 0, 1,
                     low_open=True)
        # DenseNet-BC on CIFAR: "a convolution with 2k output channels" before block 1.
        self.init_channels = arch.get('init_channels', 2 * self.growth_rate)
        self.num_stages = len(self.depths)

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out_indices = [i + self.num_stages if i < 0 else i for i in out_indices]
        assert all(0 <= i < self.num_stages for i in out_indices), \
            f'out_indices must be in [0, {self.num_stages}), got {out_indices}'
        self.out_indices = tuple(out_indices)
        assert 0 <= frozen_stages <= self.num_stages, frozen_stages
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.stem = nn.Conv2d(
            in_channels,
            self.init_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False)

        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        self.out_channels = []
        channels = self.init_channels
        for i, depth in enumerate(self.depths):
            self.stages.append(
                DenseBlock(
                    num_layers=depth,
                    in_channels=channels,
                    bn_size=bn_size,
                    growth_rate=self.growth_rate,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg,
                    drop_rate=drop_rate,
                    memory_efficient=memory_efficient))
            channels += depth * self.growth_rate
            if i != self.num_stages - 1:
                out = math.floor(channels * compression_factor)
                transition = DenseTransition(
                    channels, out, norm_cfg=norm_cfg, act_cfg=act_cfg)
                if not transition_act:
                    transition.act = nn.Identity()
                channels = out
            else:
                # Final BN + ReLU, counted as the last "transition" like mmpretrain's DenseNet.
                transition = nn.Sequential(
                    build_norm_layer(norm_cfg, channels)[1],
                    build_activation_layer(act_cfg))
            self.transitions.append(transition)
            self.out_channels.append(channels)
        self.feat_dim = channels

        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.stem(x)
        outs = []
        for i in range(self.num_stages):
            x = self.transitions[i](self.stages[i](x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        if self.frozen_stages > 0:
            # Unlike mmpretrain's DenseNet, freezing also covers the stem (as in ResNet).
            modules = [self.stem]
            for i in range(self.frozen_stages):
                modules += [self.stages[i], self.transitions[i]]
            freeze(modules)
