"""Data preprocessor that runs RecursiveMix and hands each sample its box and lam."""
from typing import Optional

import torch
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS

from ..batch_augments import RecursiveMixBatchAugment


@MODELS.register_module()
class RMDataPreprocessor(ClsDataPreprocessor):
    """A :class:`ClsDataPreprocessor` whose batch augment is RecursiveMix.

    It normalises, makes one-hot scores, mixes with :class:`RecursiveMixBatchAugment` in
    training, and writes two fields into every training ``DataSample``:

    - ``rm_box``: float tensor (4,) ``(x1, y1, x2, y2)`` in input pixels, the box the history
      was pasted into (all zeros when nothing was pasted);
    - ``rm_lam``: 0-dim float tensor, the historical area share (Eq. 1's lambda, 0 when
      nothing was pasted).

    Both live on the batch's device and are views of one tensor made per batch (one small
    host-to-device copy, never a device-to-host sync). :class:`RMClassifier` reads them to pool
    the pasted box and weight the consistency loss.

    Args:
        batch_augments (dict): as in mmpretrain, ``dict(augments=dict(type=
            'RecursiveMixBatchAugment', ...))`` (usually given as the classifier's
            ``train_cfg``). Exactly one augment, a RecursiveMixBatchAugment, and no ``probs``:
            RM needs a consistent history, so it cannot be mixed at random with other augments.
        **kwargs: the other :class:`ClsDataPreprocessor` arguments.
    """

    def __init__(self, batch_augments: Optional[dict] = None, **kwargs):
        if batch_augments is None:
            batch_augments = dict(augments=dict(type='RecursiveMixBatchAugment'))
        if not isinstance(batch_augments, dict) or 'augments' not in batch_augments:
            raise ValueError('RMDataPreprocessor: batch_augments must be dict(augments=dict('
                             f"type='RecursiveMixBatchAugment', ...)), got {batch_augments!r}")
        augments = batch_augments['augments']
        if isinstance(augments, (list, tuple)):
            if len(augments) != 1:
                raise ValueError('RMDataPreprocessor: batch_augments.augments must hold exactly '
                                 'one RecursiveMixBatchAugment, got '
                                 f'{len(augments)} augments')
            augments = augments[0]
        if batch_augments.get('probs') is not None:
            raise ValueError('RMDataPreprocessor: batch_augments.probs must be None (RecursiveMix '
                             'runs at every step to keep its history consistent), got '
                             f"{batch_augments['probs']!r}")
        aug_type = augments.get('type') if isinstance(augments, dict) else type(augments).__name__
        if aug_type not in ('RecursiveMixBatchAugment', RecursiveMixBatchAugment):
            raise ValueError('RMDataPreprocessor: the batch augment must be '
                             f"'RecursiveMixBatchAugment', got {aug_type!r}; for CutMix or "
                             'Mixup use ImageClassifier with ClsDataPreprocessor')
        super().__init__(batch_augments=dict(augments=augments), **kwargs)
        # Set by RMClassifier; a plain ImageClassifier would silently drop the RM loss.
        self._owned_by_rm_classifier = False

    @property
    def rm_augment(self) -> RecursiveMixBatchAugment:
        return self.batch_augments.augments[0]

    def forward(self, data: dict, training: bool = False) -> dict:
        if training and not self._owned_by_rm_classifier:
            raise RuntimeError(
                'RMDataPreprocessor must be the data_preprocessor of an RMClassifier '
                "(model.type='RMClassifier'). For the history-without-consistency ablation in "
                "a plain ImageClassifier use train_cfg=dict(augments=dict("
                "type='RecursiveMixBatchAugment')) with the default ClsDataPreprocessor.")
        if training:
            # A batch without labels skips the augment; never report a stale box for it.
            self.rm_augment.last_box, self.rm_augment.last_lam = (0, 0, 0, 0), 0.
        data = super().forward(data, training)
        samples = data.get('data_samples')
        if training and samples is not None:
            aug = self.rm_augment
            meta = torch.tensor([*aug.last_box, aug.last_lam], dtype=torch.float32)
            meta = meta.to(data['inputs'].device, non_blocking=True)
            box, lam = meta[:4], meta[4]
            for sample in samples:
                sample.set_field(box, 'rm_box')
                sample.set_field(lam, 'rm_lam')
        return data
