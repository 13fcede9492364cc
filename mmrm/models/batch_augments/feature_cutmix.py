"""Feature CutMix: CutMix (Yun et al., ICCV 2019) applied to a hidden feature map, the
"feature-level CutMix" of that paper's Sec. 4.1.1 and Fig. 3."""
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from mmpretrain.models.utils.batch_augments import CutMix
from mmpretrain.registry import BATCH_AUGMENTS

from ..utils.options import check_number
from .pair_mix import PairMix


@BATCH_AUGMENTS.register_module()
class FeatureCutMix(PairMix):
    r"""CutMix of a feature map (or of the image when the drawn layer is ``'input'``).

    CutMix Eq. (1)-(2) on ``x`` of shape (N, C, H, W): :math:`\lambda_0 \sim
    \mathrm{Beta}(\alpha, \alpha)`, a box of side :math:`(H, W)\sqrt{1 - \lambda_0}` with a
    uniform centre, clipped to the map (mmpretrain's ``CutMix`` sampler, reused), then

    .. math::
        \tilde x = (1 - M) \odot x + M \odot x_{\mathrm{index}},\quad
        \lambda = 1 - |M| / (HW),\quad \tilde y = \lambda\, y + (1 - \lambda)\, y_{\mathrm{index}}

    with :math:`\lambda` recomputed from the clipped box. One box per batch. Yun et al. apply it
    "at a randomly chosen layer per minibatch as Manifold Mixup does": give the same
    ``layers`` as :class:`ManifoldMixup`.

    Args:
        alpha (float): Beta parameter, > 0 (CutMix: 1.0).
        prob (float): probability of mixing a batch, in [0, 1]. Defaults to 1.
        layers (list[str]): candidate layers for :class:`FeatureMixClassifier`.
    """

    def __init__(self, alpha: float = 1.0, prob: float = 1.0,
                 layers: Union[str, Sequence[str]] = ('input', )):
        super().__init__(prob=prob, layers=layers)
        self.alpha = check_number('FeatureCutMix', 'alpha', alpha, 0, low_open=True)
        self._sampler = CutMix(alpha=self.alpha)

    def sample_box(self, hw: Tuple[int, int]) -> Tuple[Tuple[int, int, int, int], float]:
        """``((y1, y2, x1, x2), lam)``: the box on an ``hw`` map and the share outside it."""
        lam0 = np.random.beta(self.alpha, self.alpha)
        (y1, y2, x1, x2), lam = self._sampler.cutmix_bbox_and_lam(hw, lam0)
        return (int(y1), int(y2), int(x1), int(x2)), float(lam)

    def mix(self, x: torch.Tensor, index: torch.Tensor) -> Tuple[torch.Tensor, float]:
        if x.dim() != 4:
            raise ValueError('FeatureCutMix mixes (N, C, H, W) maps; the chosen layer gave '
                             f'shape {tuple(x.shape)}')
        (y1, y2, x1, x2), lam = self.sample_box(tuple(x.shape[-2:]))
        # Out of place: a module's output may still be needed by its own backward.
        out = x.clone()
        out[..., y1:y2, x1:x2] = x[index, :, y1:y2, x1:x2]
        return out, lam
