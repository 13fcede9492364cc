"""CIFAR / classification backbones the RecursiveMix paper uses that MMPretrain lacks.

The CIFAR ResNets of the paper (ResNet-18/34) are MMPretrain's ``ResNet_CIFAR``.
"""
from .densenet_cifar import DenseNetCIFAR
from .pvt_v2_cls import PyramidVisionTransformerV2Cls
from .pyramidnet import PyramidBasicBlock, PyramidBottleneck, PyramidNet

__all__ = [
    'PyramidNet', 'PyramidBasicBlock', 'PyramidBottleneck', 'DenseNetCIFAR',
    'PyramidVisionTransformerV2Cls'
]
