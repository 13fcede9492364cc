"""CIFAR / classification backbones the RecursiveMix paper uses that MMPretrain lacks.

The CIFAR ResNets of the paper (ResNet-18/34) are MMPretrain's ``ResNet_CIFAR``.
"""
from mmpretrain.registry import MODELS

from .densenet_cifar import DenseNetCIFAR
from .dropblock import DropBlock
from .dropblock_backbone import DropBlockBackbone
from .pyramidnet import PyramidBasicBlock, PyramidBottleneck, PyramidNet

try:
    from .pvt_v2_cls import PyramidVisionTransformerV2Cls
except ImportError as _pvt_error:  # MMDetection (and its compiled mmcv ops) is optional
    _PVT_IMPORT_ERROR = _pvt_error

    # Registered under the same name so that a PVTv2 config fails when it is built, naming the
    # cause and the command that completes the environment, while classification with the other
    # backbones works on a stack without mmdet (the classification-only .venv of `make demo`).
    @MODELS.register_module(name='PyramidVisionTransformerV2Cls')
    def PyramidVisionTransformerV2Cls(**kwargs):
        from mmrm.utils.stack import require
        require('The PVTv2 backbone (PyramidVisionTransformerV2Cls, built on MMDetection\'s '
                'PyramidVisionTransformerV2)', ('ops', 'mmdet'), cause=_PVT_IMPORT_ERROR)
        raise ImportError(
            'PyramidVisionTransformerV2Cls is built on MMDetection\'s PVTv2, which failed to '
            f'import ({_PVT_IMPORT_ERROR}); install mmdet==3.3.0 and mmcv with compiled ops '
            '(make install)') from _PVT_IMPORT_ERROR

__all__ = [
    'PyramidNet', 'PyramidBasicBlock', 'PyramidBottleneck', 'DenseNetCIFAR',
    'PyramidVisionTransformerV2Cls', 'DropBlock', 'DropBlockBackbone'
]
