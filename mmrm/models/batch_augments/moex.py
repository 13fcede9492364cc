"""MoEx, Moment Exchange (Li, Wu, Lim, Belongie, Weinberger, "On Feature Normalization and Data
Augmentation", CVPR 2021), with PONO moments as in the authors' ImageNet and CIFAR code."""
from typing import Sequence, Tuple, Union

import torch
from mmpretrain.registry import BATCH_AUGMENTS

from ..utils.options import check_number
from .pair_mix import PairMix


def pono_moments(x: torch.Tensor, eps: float = 1e-5) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""Positional normalisation moments of ``x`` (N, C, ...): the mean and
    :math:`\sqrt{\mathrm{Var} + \epsilon}` over the channels at every position, each
    (N, 1, ...). The variance is the unbiased one (``torch.var``), as the authors' code."""
    return x.mean(1, keepdim=True), x.var(1, keepdim=True).add(eps).sqrt()


@BATCH_AUGMENTS.register_module()
class MoEx(PairMix):
    r"""Exchange the first and second PONO moments of a feature map between samples.

    For ``h`` (N, C, H, W) at the drawn layer, with :math:`(\mu, \sigma)` = :func:`pono_moments`
    (per sample and position, over channels):

    .. math::
        \tilde h_i = \frac{h_i - \mu_i}{\sigma_i}\, \sigma_{\mathrm{index}[i]} +
        \mu_{\mathrm{index}[i]},\quad
        \tilde y_i = \lambda\, y_i + (1 - \lambda)\, y_{\mathrm{index}[i]}

    i.e. sample i keeps its normalised features and takes its partner's moments; the label
    interpolates with the FIXED :math:`\lambda` of the method (not sampled). Computed in float32
    and cast back, as the authors' code. The authors apply it with probability ``prob`` at the
    ResNet stem (after the max pool: ``'backbone.maxpool'`` in mmpretrain's ResNet) on ImageNet
    (``lam=0.9, prob=1``; with CutMix ``prob=0.25``) and after the first conv + BN of PyramidNet
    on CIFAR (``'backbone.bn1'``, ``lam=0.5, prob=0.25``).

    Args:
        lam (float): weight of the sample's own label, in [0, 1].
        prob (float): probability of exchanging in a batch, in [0, 1]. Defaults to 1.
        eps (float): added to the variance, > 0. Defaults to 1e-5.
        layers (list[str]): candidate layers for :class:`FeatureMixClassifier`.
    """

    def __init__(self, lam: float = 0.9, prob: float = 1.0, eps: float = 1e-5,
                 layers: Union[str, Sequence[str]] = ('input', )):
        super().__init__(prob=prob, layers=layers)
        self.lam = check_number('MoEx', 'lam', lam, 0, 1)
        self.eps = check_number('MoEx', 'eps', eps, 0, low_open=True)

    def mix(self, x: torch.Tensor, index: torch.Tensor) -> Tuple[torch.Tensor, float]:
        if x.dim() < 3:
            raise ValueError('MoEx exchanges per-position moments of (N, C, H, W) maps; the '
                             f'chosen layer gave shape {tuple(x.shape)}')
        h = x.float()
        mean, std = pono_moments(h, self.eps)
        # (h - mean) / std * std' + mean' as one multiply-add, as the authors' code
        scale = std[index] / std
        return (h * scale + (mean[index] - mean * scale)).to(x.dtype), self.lam
