"""What RecursiveMix did to one training batch."""
from dataclasses import dataclass
from typing import Tuple

import torch


@dataclass
class RMMix:
    """Made once per training batch by :class:`~mmrm.models.RMDataPreprocessor` and handed to
    :class:`~mmrm.models.RMClassifier` with the batch (the ``rm_mix`` entry of the
    preprocessor's output, a keyword of ``RMClassifier.loss``): the classifier learns the
    pasted box only from it.

    Attributes:
        scores: ``(N, K)`` float32 mixed targets :math:`\\tilde y^t = \\lambda y^h + (1 -
            \\lambda) y^t` (Eq. 1), on the batch's device.
        box: ``(x1, y1, x2, y2)`` input-pixel ints of the box the history was pasted into
            (x along the width; ``(0, 0, 0, 0)`` when nothing was pasted), on the host.
        lam: the historical area share :math:`\\lambda = |B| / (HW)` (0. when nothing was
            pasted), a host float: it scales the loss without a device tensor.
        input_hw: ``(H, W)`` of the mixed inputs.
    """
    scores: torch.Tensor
    box: Tuple[int, int, int, int]
    lam: float
    input_hw: Tuple[int, int]

    @property
    def pasted(self) -> bool:
        return self.lam > 0
