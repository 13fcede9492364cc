"""What RecursiveMix did to one training batch."""
from dataclasses import dataclass, field
from typing import Optional, Tuple

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
        roi: what the RoI head pools ``box`` with
            (:meth:`~mmrm.models.RoIConsistencyHead.prepare`: the RoIAlign weights on the map's
            grid, or the RoIs), built on the host by the classifier once it knows the map's
            size; ``None`` before that (the head then builds it from ``box``).
        active: False when a recipe switch has turned RecursiveMix off
            (``batch_augments=None``): the scores are the plain targets, nothing was pasted,
            and the classifier drops its history and trains plainly.
        lam_tensor: ``lam`` as a 0-d float64 host tensor. Under ``torch.compile`` the box and
            lam reach compiled code only as ``roi`` and ``lam_tensor``: the Python numbers
            would be constants dynamo specialises on, one graph per box.
    """
    scores: torch.Tensor
    box: Tuple[int, int, int, int]
    lam: float
    input_hw: Tuple[int, int]
    roi: Optional[torch.Tensor] = None
    active: bool = True
    lam_tensor: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        self.lam_tensor = torch.tensor(self.lam, dtype=torch.float64)

    @property
    def pasted(self) -> bool:
        return self.lam > 0
