"""PuzzleMixClassifier: an ImageClassifier trained on Puzzle Mix batches (Kim et al., ICML 2020)."""
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import BATCH_AUGMENTS, MODELS
from mmpretrain.structures import DataSample

from ..batch_augments import PuzzleMix
from .feature_mix_classifier import TargetChecks, onehot_preprocessor, stack_scores


@MODELS.register_module()
class PuzzleMixClassifier(TargetChecks, ImageClassifier):
    r"""ImageClassifier whose training step mixes the batch with :class:`PuzzleMix`.

    A training step, with probability ``puzzle_mix.prob`` (as the authors' ``train.py``):

    1. saliency pass: the model in eval mode (BN running statistics untouched) computes the
       loss of the clean batch :math:`x` (N, C, H, W) on its labels and the input gradient;
       :math:`s = \sqrt{\mathrm{mean}_c\, (\partial \ell / \partial x)^2}` (N, H, W). Only
       the input gradient is taken, so no parameter gradient is left behind;
    2. :class:`PuzzleMix` mixes the batch and the one-hot labels from :math:`s` (and the
       batch un-normalised to [0, 1] with the data preprocessor's mean / std);
    3. the usual forward and loss on the mixed batch (``CrossEntropyLoss(use_soft=True)``).

    Otherwise the step trains on the clean batch. ``predict`` and evaluation are the plain
    ImageClassifier path.

    Not cheap to compile (MMEngine's ``compile=True``): the saliency pass takes an input
    gradient inside the step and :class:`PuzzleMix` runs its graph cut on the host (eager on
    purpose), so the step is cut into several graphs around eager work; the graphs are reused
    after the warm-up (no recompilation as the mask changes).

    Args:
        backbone, neck, head, pretrained, train_cfg, init_cfg: as :class:`ImageClassifier`.
        puzzle_mix (dict): :class:`PuzzleMix` config. Defaults to the authors' ImageNet one.
        data_preprocessor (dict): as ImageClassifier; ``to_onehot`` defaults to True here.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 puzzle_mix: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, neck=neck, head=head, pretrained=pretrained,
                         train_cfg=train_cfg,
                         data_preprocessor=onehot_preprocessor(data_preprocessor),
                         init_cfg=init_cfg)
        self._init_checks()
        puzzle_mix = dict(type='PuzzleMix') if puzzle_mix is None else puzzle_mix
        self.puzzle_mix = BATCH_AUGMENTS.build(puzzle_mix) if isinstance(
            puzzle_mix, dict) else puzzle_mix
        if not isinstance(self.puzzle_mix, PuzzleMix):
            raise TypeError('PuzzleMixClassifier: puzzle_mix must be a PuzzleMix, got '
                            f'{type(self.puzzle_mix).__name__}')

    def saliency(self, inputs: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """(N, H, W) input-gradient saliency of the clean batch, the model in eval mode."""
        was_training = self.training
        self.eval()
        try:
            with torch.enable_grad():
                x = inputs.detach().requires_grad_(True)
                logits = self.head(self.extract_feat(x))
                loss = -(scores * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
                grad, = torch.autograd.grad(loss, x)
        finally:
            self.train(was_training)
        return grad.pow(2).mean(1).sqrt()

    def _pixels01(self, inputs: torch.Tensor) -> torch.Tensor:
        """The batch in [0, 1] pixel units (the authors' ``input * std + mean``)."""
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            inputs = inputs * pre.std + pre.mean
        return inputs / 255.

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        scores = stack_scores('PuzzleMixClassifier', data_samples)
        if np.random.rand() < self.puzzle_mix.prob:
            saliency = self.saliency(inputs, scores)
            inputs, scores = self.puzzle_mix(inputs, scores, saliency,
                                             pixels=self._pixels01(inputs))
            for sample, score in zip(data_samples, scores):
                sample.set_gt_score(score)
        return self.head.loss(self.extract_feat(inputs), data_samples)
