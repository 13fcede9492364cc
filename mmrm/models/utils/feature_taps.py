"""Where RecursiveMix's RoI branch reads the feature map: the map the main path pools.

RM's consistency head (paper Eq. 4) pools the pasted box from "the last feature map", the one
whose global average feeds the classifier. Networks hand that map to the pooling in a few ways,
and a :class:`FeatureTap` exists for each kind, chosen from the model's structure when the
classifier is built (:func:`build_feature_tap`), never from a list of backbone names:

- :class:`PoolingInputTap`: a global pooling *module* pools it: a ``GlobalAveragePooling`` /
  ``GeneralizedMeanPooling`` neck (ResNet, Swin, EfficientNet, MobileNet, HRNet after its
  scale-fusing neck, LeViT, EfficientFormer's 1-d pooling of ``(N, C, L)``, ...) or a global
  pooling layer among the backbone's own children (Inception-v3). The map is that module's input
  (for a generalised mean, its ``max(x, eps)^p``, the box's mean then taken to ``1/p``); a global
  max is refused (RoIAlign averages).
- :class:`StageOutputTap`: the backbone averages its last stage's output itself and normalises
  the average (``gap_before_final_norm=True``: ConvNeXt, ConvNeXt-V2, EdgeNeXt, TinyViT). The
  map is the stage's output (a map or a token sequence); the pooled box goes through the same
  final norm as the pooled map does.
- :class:`TokenTap`: a ViT-style backbone (DeiT, DeiT-3, ViT, ...) classifies its class token or
  the average of its patch tokens. The map is the patch tokens after the final norm, laid back
  on the patch grid, class / distillation tokens excluded; with ``avg_featmap`` the pooled box
  goes through the same ``ln2`` as the average.

A tap only *observes* the main forward pass through hooks that record tensors, so the main path
stays exactly the original model's. ``with tap.capture(input_hw) as found:`` around the
forward leaves ``found.map`` (a :class:`~mmrm.models.utils.SpatialMap`) and ``found.post_pool``
(a callable on the pooled ``(N, C)`` feature, or ``None``). The hooks are registered once, when
the tap is built, and record only inside ``capture()``: registering a hook per step would break
a ``torch.compile``d training step in two (dynamo cannot trace ``RemovableHandle``'s counter).
"""
from contextlib import contextmanager
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn

from .spatial_map import SpatialMap

#: global pooling modules whose input is the map (output size 1 in every spatial dim)
_TORCH_GLOBAL_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
                       nn.AdaptiveMaxPool2d)
#: mmpretrain necks that are a global pooling
_POOLING_NECKS = ('GlobalAveragePooling', 'GeneralizedMeanPooling')
#: ViT-style outputs that pool or select tokens (``featmap`` / ``raw`` return the map itself)
_POOLED_TOKEN_OUTPUTS = ('cls_token', 'avg_featmap')


class Captured:
    """What one forward pass left: the map (and the post-pool transform) of the RoI branch."""

    def __init__(self):
        self.tensor: Optional[torch.Tensor] = None
        self.grid_hw: Optional[Tuple[int, int]] = None
        self.norm_dims: Optional[int] = None
        self.map: Optional[SpatialMap] = None
        self.post_pool: Optional[Callable[[torch.Tensor], torch.Tensor]] = None


class FeatureTap:
    """Base class: ``describe()`` names where the map is read, ``capture()`` reads it.

    Subclasses register their hooks (bound methods, so a deep copy of the model hooks its own
    copy of the tap) with :meth:`_hook` in ``__init__``; a hook records into :attr:`_found`,
    which is set only while :meth:`capture` runs."""

    #: True when the pooled map is what the head receives, unchanged (so the head's
    #: ``in_channels`` is the width of the pooled feature)
    feeds_head_directly: bool = True
    _found: Optional[Captured] = None

    def describe(self) -> str:
        raise NotImplementedError

    def _hook(self, module: nn.Module, hook: Callable, pre: bool = False) -> None:
        (module.register_forward_pre_hook if pre else module.register_forward_hook)(hook)

    def _finish(self, found: Captured, input_hw: Tuple[int, int]) -> None:
        found.map = SpatialMap.from_tensor(found.tensor, None, input_hw)

    @contextmanager
    def capture(self, input_hw: Tuple[int, int]):
        found = self._found = Captured()
        try:
            yield found
        finally:
            self._found = None
        if found.tensor is None:
            raise RuntimeError(f'RMClassifier: the forward pass never reached {self.describe()}; '
                               'the RoI branch has no feature map')
        self._finish(found, input_hw)


class PoolingInputTap(FeatureTap):
    r"""The input of a global pooling module (the last tensor it pooled in the forward).

    An average pooling is what the RoI branch's 1x1 RoIAlign computes over the box. For a
    generalised mean (``GeneralizedMeanPooling``: :math:`(\mathrm{mean}\,
    \max(x, \epsilon)^p)^{1/p}`) the branch pools the box the same way: the map handed over
    is :math:`\max(x, \epsilon)^p` and the post-pool transform :math:`(\cdot)^{1/p}` (with the
    module's own, possibly trained, ``p``), so the whole-image box is the main path's GeM."""

    def __init__(self, module: nn.Module, name: str, feeds_head_directly: bool):
        self.module = module
        self.name = name
        self.feeds_head_directly = feeds_head_directly
        self.gem = type(module).__name__ == 'GeneralizedMeanPooling'
        self._hook(module, self._record, pre=True)

    def describe(self) -> str:
        return f'the input of {self.name} ({type(self.module).__name__})'

    def _record(self, module, args):
        if self._found is not None:
            x = args[0]
            self._found.tensor = x[-1] if isinstance(x, (tuple, list)) else x

    def _finish(self, found: Captured, input_hw: Tuple[int, int]) -> None:
        if self.gem:
            gem = self.module
            x = found.tensor.clamp(min=gem.eps) if gem.clamp else found.tensor
            found.tensor = x.pow(gem.p)
            # an empty box pools 0: clamped to the smallest value the main path can pool, so
            # that the root's gradient stays finite (the box's loss weighs 0 then)
            found.post_pool = lambda pooled: pooled.clamp_min(gem.eps**float(gem.p)).pow(
                1. / gem.p)
        super()._finish(found, input_hw)


class StageOutputTap(FeatureTap):
    """The last output stage of a backbone that averages it and normalises the average
    (``gap_before_final_norm=True``); the same norm is the post-pool transform."""

    def __init__(self, backbone: nn.Module, index: int):
        self.stage = backbone.stages[index]
        self.norm = getattr(backbone, f'norm{index}')
        self.index = index
        self.backbone_name = type(backbone).__name__
        self._hook(self.stage, self._record_stage)
        self._hook(self.norm, self._record_norm, pre=True)

    def describe(self) -> str:
        return f'{self.backbone_name}.stages[{self.index}] (averaged before norm{self.index})'

    def _record_stage(self, module, args, output):
        if self._found is not None:
            self._found.tensor = output

    def _record_norm(self, module, args):
        if self._found is not None:
            self._found.norm_dims = args[0].dim()

    def _finish(self, found: Captured, input_hw: Tuple[int, int]) -> None:
        t = found.tensor
        # TinyViT's stages give (N, L, C) tokens, the others (N, C, h, w) maps
        found.map = SpatialMap.from_tensor(t, 'nlc' if t.dim() == 3 else 'nchw', input_hw)
        norm, dims = self.norm, found.norm_dims or 2

        def post_pool(pooled: torch.Tensor) -> torch.Tensor:
            # as the backbone calls it: e.g. LayerNorm2d on (N, C, 1, 1), LayerNorm on (N, C)
            return norm(pooled.reshape(*pooled.shape, *([1] * (dims - 2)))).flatten(1)

        found.post_pool = post_pool


class TokenTap(FeatureTap):
    """Patch tokens of a ViT-style backbone after its final norm, on the patch grid."""

    def __init__(self, backbone: nn.Module):
        self.backbone_name = type(backbone).__name__
        self.patch_embed = backbone.patch_embed
        layers = backbone.layers
        last = sorted(i % len(layers) for i in backbone.out_indices)[-1]
        final_norm = getattr(backbone, 'final_norm', False) and last == len(layers) - 1
        self.token_module = backbone.ln1 if final_norm else layers[last]
        self.token_name = 'ln1' if final_norm else f'layers[{last}]'
        self.num_extra_tokens = int(backbone.num_extra_tokens)
        self.ln2 = backbone.ln2 if backbone.out_type == 'avg_featmap' else None
        self._hook(self.patch_embed, self._record_grid)
        self._hook(self.token_module, self._record_tokens)

    def describe(self) -> str:
        return f'the patch tokens of {self.backbone_name}.{self.token_name}'

    def _record_grid(self, module, args, output):
        if self._found is not None:
            self._found.grid_hw = tuple(output[1])  # PatchEmbed returns (tokens, (h, w))

    def _record_tokens(self, module, args, output):
        if self._found is not None:
            self._found.tensor = output

    def _finish(self, found: Captured, input_hw: Tuple[int, int]) -> None:
        found.map = SpatialMap.from_tensor(found.tensor, 'nlc', input_hw, grid_hw=found.grid_hw,
                                           num_extra_tokens=self.num_extra_tokens)
        found.post_pool = self.ln2


def _is_global_pool(module: nn.Module) -> bool:
    if type(module).__name__ in _POOLING_NECKS:
        return True
    if isinstance(module, _TORCH_GLOBAL_POOLS):
        size = module.output_size
        sizes = size if isinstance(size, (tuple, list)) else (size, )
        return all(s == 1 for s in sizes)
    return False


def _neck_pooling(neck: Optional[nn.Module]) -> Optional[Tuple[str, nn.Module, bool]]:
    """``(name, module, feeds_head_directly)`` of the first global pooling in the neck: it
    feeds the head directly when the neck IS the pooling, or a sequence ending with it."""
    if neck is None:
        return None
    for name, module in neck.named_modules():
        if _is_global_pool(module):
            direct = name == '' or (isinstance(neck, nn.Sequential)
                                    and name == str(len(neck) - 1))
            return 'neck' + ('.' + name if name else ''), module, direct
    return None


def _refuse_max(module: nn.Module, name: str) -> None:
    if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        raise ValueError(
            f'RMClassifier: the main path pools the map with a global MAX ({name}, '
            f'{type(module).__name__}); the RoI branch averages the pasted box (RoIAlign), '
            'which pools the way the main path does only for an average or a generalised mean: '
            'use GlobalAveragePooling or GeneralizedMeanPooling')


def build_feature_tap(backbone: nn.Module, neck: Optional[nn.Module]) -> FeatureTap:
    """The :class:`FeatureTap` of a classifier, from its structure; a clear ``ValueError``
    naming the backbone where there is no spatial map before the classifier, or naming the
    pooling where the main path pools in a way the RoI branch cannot (a global max)."""
    pooling = _neck_pooling(neck)
    if pooling is not None:
        name, module, is_last = pooling
        _refuse_max(module, name)
        return PoolingInputTap(module, name, feeds_head_directly=is_last)
    if getattr(backbone, 'gap_before_final_norm', False) and hasattr(backbone, 'stages'):
        index = sorted(i % len(backbone.stages) for i in backbone.out_indices)[-1]
        if hasattr(backbone, f'norm{index}'):
            tap = StageOutputTap(backbone, index)
            tap.feeds_head_directly = neck is None
            return tap
    if getattr(backbone, 'out_type', None) in _POOLED_TOKEN_OUTPUTS and all(
            hasattr(backbone, a) for a in ('patch_embed', 'layers', 'num_extra_tokens',
                                           'out_indices')):
        tap = TokenTap(backbone)
        tap.feeds_head_directly = neck is None
        return tap
    for name, module in backbone.named_children():
        if _is_global_pool(module):
            _refuse_max(module, f'backbone.{name}')
            return PoolingInputTap(module, f'backbone.{name}', feeds_head_directly=False)
    neck_name = type(neck).__name__ if neck is not None else 'no neck'
    raise ValueError(
        f'RMClassifier: cannot find a spatial feature map before the classifier of '
        f'{type(backbone).__name__} ({neck_name}). RecursiveMix pools the pasted box from the '
        'map the main path pools globally, so it needs one of: a global pooling neck '
        f'({", ".join(_POOLING_NECKS)}), a backbone that averages its last stage itself '
        '(gap_before_final_norm=True), a ViT-style backbone with out_type in '
        f'{_POOLED_TOKEN_OUTPUTS}, or a global pooling layer among the backbone\'s children')
