"""Manifold Mixup (Verma et al., "Manifold Mixup: Better Representations by Interpolating Hidden
States", ICML 2019)."""
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from mmpretrain.registry import BATCH_AUGMENTS

from ..utils.options import check_number
from .pair_mix import PairMix


@BATCH_AUGMENTS.register_module()
class ManifoldMixup(PairMix):
    r"""Mixup of the hidden state at a layer :math:`k` drawn per step (Verma et al., Sec. 2).

    .. math::
        \lambda \sim \mathrm{Beta}(\alpha, \alpha),\quad
        \tilde h = \lambda\, g_k(x) + (1 - \lambda)\, g_k(x_{\mathrm{index}}),\quad
        \tilde y = \lambda\, y + (1 - \lambda)\, y_{\mathrm{index}}

    One :math:`\lambda` per batch. ``x`` is any (N, ...) tensor: the image batch when
    ``layers`` draws ``'input'`` (then this is input Mixup), else the output of the drawn
    module, e.g. ``(N, C, H, W)`` after a ResNet stage. :class:`FeatureMixClassifier` draws the
    layer; the authors' code draws ``k`` from {input, after stage 1, after stage 2}
    (``layer_mix = random.randint(0, 2)`` in their PreActResNet).

    Args:
        alpha (float): Beta parameter, > 0. 1.0 in the RM / CutMix comparisons; 2.0 in
            Verma et al.'s CIFAR runs.
        prob (float): probability of mixing a batch, in [0, 1]. Defaults to 1.
        layers (list[str]): candidate layers for :class:`FeatureMixClassifier`.
    """

    def __init__(self, alpha: float = 1.0, prob: float = 1.0,
                 layers: Union[str, Sequence[str]] = ('input', )):
        super().__init__(prob=prob, layers=layers)
        self.alpha = check_number('ManifoldMixup', 'alpha', alpha, 0, low_open=True)

    def sample_lam(self) -> float:
        return float(np.random.beta(self.alpha, self.alpha))

    def mix(self, x: torch.Tensor, index: torch.Tensor) -> Tuple[torch.Tensor, float]:
        lam = self.sample_lam()
        return lam * x + (1. - lam) * x[index], lam
