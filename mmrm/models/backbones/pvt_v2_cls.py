"""PVTv2 as an MMPretrain classification backbone, with MMDetection's parameter names.

The RecursiveMix paper pretrains PVTv2-B1 on ImageNet and fine-tunes it in MMDetection and
MMSegmentation. MMPretrain has no PVTv2; MMDetection has ``PyramidVisionTransformerV2``.
Pretraining with MMDetection's own class keeps the checkpoint keys identical to what the
downstream configs load (``backbone.layers.*``), so no key conversion is needed between
pretraining and detection/segmentation. The subclass only turns the returned list into the
tuple MMPretrain necks expect and defaults to the last stage; it adds no module, parameter or
buffer.

Config example (``mmpretrain.models.ImageClassifier``; PVTv2-B1: 14.0M params with an
ImageNet head, as in the PVTv2 paper; the last map is ``(N, 512, H/32, W/32)``)::

    backbone=dict(type='PyramidVisionTransformerV2Cls', embed_dims=64,
                  num_layers=[2, 2, 2, 2])
    neck=dict(type='GlobalAveragePooling')
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=512)

Downstream note: MMDetection's ``PyramidVisionTransformer.init_weights`` handles
``init_cfg=dict(type='Pretrained', ...)`` itself; it ignores ``prefix`` and runs the
original-repo key conversion (``convert_weights=True``). Keys already in ``layers.*`` form pass
that conversion unchanged, so a backbone-only checkpoint (prefix stripped) loads in mmdet/mmseg;
a full classifier checkpoint with ``prefix='backbone.'`` does not (every key is left
unexpected and the backbone stays random). This subclass honours ``prefix`` (see
:meth:`PyramidVisionTransformerV2Cls.init_weights`); MMDetection's class does not.
"""
from typing import Sequence, Union

from mmdet.models.backbones.pvt import PyramidVisionTransformerV2
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class PyramidVisionTransformerV2Cls(PyramidVisionTransformerV2):
    """PVTv2 backbone for image classification (MMDetection's implementation).

    `PVT v2: Improved Baselines with Pyramid Vision Transformer
    <https://arxiv.org/abs/2106.13797>`_ (Wang et al., CVMJ 2022).

    Architecture (MMDetection's ``PyramidVisionTransformerV2``): 4 stages, each an overlapping
    patch embedding (7x7 stride 4, then 3x3 stride 2 convolutions + LN), transformer encoder
    layers with spatial-reduction attention (``sr_ratios``) and a convolutional FFN
    (depth-wise 3x3 conv inside the MLP), and a LayerNorm at the end of every stage. Stage
    ``i`` has ``embed_dims * num_heads[i]`` channels at stride ``4 * 2**i``. The last stage
    ends with its LayerNorm, so global average pooling of the last output is the original
    PVTv2 classifier's ``norm4(x).mean(1)``.

    PVTv2-B1: ``embed_dims=64, num_layers=[2, 2, 2, 2]`` with the defaults
    ``num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1]``; output widths
    64 / 128 / 320 / 512. For an ``(N, 3, 224, 224)`` input the last map is
    ``(N, 512, 7, 7)``. Any input size works (the patch embeddings are padded convolutions).

    Args:
        out_indices (Sequence[int] | int): Stages (0..3) whose outputs are returned.
            Defaults to ``(3, )``, the map a classifier pools.
        **kwargs: Every other argument of MMDetection's ``PyramidVisionTransformerV2``
            (``embed_dims``, ``num_layers``, ``num_heads``, ``drop_path_rate`` (default 0.1),
            ``init_cfg``, ...).
    """

    def __init__(self, out_indices: Union[int, Sequence[int]] = (3, ),
                 **kwargs):
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        num_stages = kwargs.get('num_stages', 4)
        out_indices = tuple(i + num_stages if i < 0 else i for i in out_indices)
        super().__init__(out_indices=out_indices, **kwargs)

    @property
    def out_channels(self) -> list:
        """Widths of the stage outputs (all four stages, whatever ``out_indices``)."""
        return [self.embed_dims * h for h in self.num_heads]

    def init_weights(self):
        """MMDetection's initialisation, except for ``Pretrained`` with a ``prefix``.

        MMDetection's ``init_weights`` drops ``prefix``; loading an MMPretrain classifier
        checkpoint (``backbone.*`` keys) through it would silently load nothing. With a
        ``prefix`` the generic MMEngine ``PretrainedInit`` is used instead, which strips the
        prefix and loads the keys as they are (they already have this class's names).
        """
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained' \
                and init_cfg.get('prefix'):
            BaseModule.init_weights(self)
        else:
            super().init_weights()

    def forward(self, x) -> tuple:
        return tuple(super().forward(x))
