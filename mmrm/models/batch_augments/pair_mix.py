"""The part every pairwise mixing op shares: probability, partner index, label interpolation."""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..utils.options import check_number


class PairMix:
    r"""Base of the ops that mix sample ``i`` with sample ``index[i]`` of the same batch.

    ``op(x, scores, index=None) -> (x_mixed, scores_mixed)`` with ``x`` an (N, ...) tensor
    (the image batch or a hidden feature map) and ``scores`` (N, K) one-hot or soft labels.
    The subclass's :meth:`mix` returns the mixed tensor and :math:`\lambda`, the weight of
    each sample's OWN label (a float, or an (N,) tensor when it differs per sample):

    .. math:: \tilde y_i = \lambda_i\, y_i + (1 - \lambda_i)\, y_{\mathrm{index}[i]}

    With probability ``1 - prob`` the op does nothing (``x`` returned as is, ``lam = 1``).
    ``index`` defaults to a fresh permutation; :class:`FeatureMixClassifier` passes one
    permutation per step to all of its ops, so that combined ops pair the same samples (as
    MoEx's CutMix + MoEx code does).

    As an mmpretrain batch augment (``train_cfg=dict(augments=...)``) the op mixes the input
    images. ``layers`` is read by :class:`FeatureMixClassifier` only: the places (``'input'`` or
    a module name such as ``'backbone.layer1'``) one of which is drawn uniformly per step.

    After each call :attr:`last_lam` holds the label weight used (None when not applied).

    Under ``torch.compile`` (MMEngine's ``compile=True``) a call runs eagerly on purpose: traced,
    dynamo would guard on every drawn lam / box and compile a graph per value. The mixing is a
    few element-wise ops, cheap eagerly; the network around it compiles once.
    """

    def __init__(self, prob: float = 1.0, layers: Union[str, Sequence[str]] = ('input', )):
        name = type(self).__name__
        self.prob = check_number(name, 'prob', prob, 0, 1)
        if isinstance(layers, str):
            layers = (layers, )
        if (not isinstance(layers, (list, tuple)) or not layers
                or not all(isinstance(x, str) and x for x in layers)):
            raise ValueError(f"{name}: layers must be a non-empty list of names ('input' or a "
                             f"module such as 'backbone.layer1'), got {layers!r}")
        self.layers = tuple(layers)
        self.last_lam: Optional[Union[float, torch.Tensor]] = None

    def mix(self, x: torch.Tensor,
            index: torch.Tensor) -> Tuple[torch.Tensor, Union[float, torch.Tensor]]:
        raise NotImplementedError

    def applies(self) -> bool:
        """Whether this call mixes: one host draw against ``prob`` (np.random, seeded by
        MMEngine like mmpretrain's augments; no draw when ``prob`` is 1)."""
        return self.prob >= 1 or np.random.rand() < self.prob

    # Eager under torch.compile: traced, dynamo would specialise on each drawn lam / box.
    @torch.compiler.disable(reason='host draws of a mixing op: a graph per value if traced')
    def __call__(self, x: torch.Tensor, scores: torch.Tensor,
                 index: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        scores = scores.float()
        if not self.applies():
            self.last_lam = None
            return x, scores
        if index is None:
            index = torch.randperm(x.size(0), device=x.device)
        x, lam = self.mix(x, index)
        lam_col = lam.view(-1, 1).to(scores) if torch.is_tensor(lam) else lam
        self.last_lam = lam
        return x, lam_col * scores + (1. - lam_col) * scores[index]

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items()
                         if not k.startswith('_') and k != 'last_lam')
        return f'{type(self).__name__}({args})'
