"""RMClassifier: an ImageClassifier trained with RecursiveMix's dual head."""
import copy
from typing import List, Optional

import torch
import torch.nn as nn
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..data_preprocessors import RMDataPreprocessor
from ..heads import RoIConsistencyHead


@MODELS.register_module()
class RMClassifier(ImageClassifier):
    r"""Image classifier with RecursiveMix's RoI consistency head (paper Eq. 3-5).

    Training step on a mixed batch :math:`\tilde x^t` (N, 3, H, W) with box B and lam from
    :class:`RMDataPreprocessor`:

    - main path (Eq. 3): feature maps ``F = backbone(x)``, logits
      :math:`\tilde p^t = H(\mathrm{GAP}(F_{-1}))` (N, K) and ``loss = CE(p, y_mix)``;
    - RoI path (Eq. 4): :math:`\tilde p^t_{roi} = H'(\mathrm{RoIAlign}_{1\times1}(F_{-1}, B))`;
    - ``loss_rm = omega * lam * KL(softmax(p^h) || softmax(p_roi))`` (Eq. 5), where
      :math:`p^h` is the main logits of the previous step, kept detached on this module
      (never a parameter or buffer, so never in a checkpoint).

    The RoI term is always computed (weighted 0 when nothing was pasted), so every parameter
    gets a gradient at every step and DDP needs no ``find_unused_parameters``. ``predict``,
    ``val_step`` and ``test_step`` are the plain ImageClassifier path and never read or change
    the history. For deployment drop ``roi_head.*`` (``tools/model_converters/rm2cls.py``):
    what is left is a plain ImageClassifier with the baseline's parameters.

    Args:
        backbone, neck, head, pretrained, init_cfg: as :class:`ImageClassifier`. ``head``
            must be a linear head with an ``fc`` (e.g. ``LinearClsHead``) on the pooled last
            feature map.
        roi_head (dict): :class:`RoIConsistencyHead` config; ``num_classes`` and
            ``in_channels`` default to the main head's.
        train_cfg (dict): batch augments as in mmpretrain; defaults to
            ``dict(augments=dict(type='RecursiveMixBatchAugment'))``.
        data_preprocessor (dict): defaults to type ``RMDataPreprocessor`` (required).
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 roi_head: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if head is None:
            raise ValueError('RMClassifier: head is required (a linear head such as '
                             "dict(type='LinearClsHead', ...))")
        if train_cfg is None:
            train_cfg = dict(augments=dict(type='RecursiveMixBatchAugment'))
        data_preprocessor = copy.deepcopy(data_preprocessor) or {}
        if isinstance(data_preprocessor, dict):
            data_preprocessor.setdefault('type', 'RMDataPreprocessor')
        super().__init__(backbone, neck=neck, head=head, pretrained=pretrained,
                         train_cfg=train_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(self.data_preprocessor, RMDataPreprocessor):
            raise ValueError('RMClassifier: data_preprocessor must be an RMDataPreprocessor '
                             "(type='RMDataPreprocessor', the default), got "
                             f'{type(self.data_preprocessor).__name__}')
        self.data_preprocessor._owned_by_rm_classifier = True

        head_fc = getattr(self.head, 'fc', None)
        if not isinstance(head_fc, nn.Linear):
            raise ValueError('RMClassifier: the main head must have a linear `fc` (e.g. '
                             f'LinearClsHead), got {type(self.head).__name__}')
        roi_head = dict(type='RoIConsistencyHead') if roi_head is None else dict(roi_head)
        roi_head.setdefault('num_classes', head_fc.out_features)
        roi_head.setdefault('in_channels', head_fc.in_features)
        self.roi_head: RoIConsistencyHead = MODELS.build(roi_head)
        self._check_heads(head_fc)
        # Main logits of the last training step (p^h of Eq. 3), detached.
        self._hist_logits: Optional[torch.Tensor] = None

    def _check_heads(self, head_fc: nn.Linear) -> None:
        roi = self.roi_head
        if roi.num_classes != head_fc.out_features:
            raise ValueError(f'RMClassifier: roi_head.num_classes={roi.num_classes} must equal '
                             f'the main head num_classes={head_fc.out_features}')
        pools_last_map = self.neck is None or type(self.neck).__name__ == 'GlobalAveragePooling'
        if pools_last_map and roi.in_channels != head_fc.in_features:
            raise ValueError(f'RMClassifier: roi_head.in_channels={roi.in_channels} must equal '
                             'the channels of the backbone\'s last feature map, which the main '
                             f'head sees as in_channels={head_fc.in_features}')
        if roi.share_fc and roi.in_channels != head_fc.in_features:
            raise ValueError('RMClassifier: roi_head.share_fc=True needs the main fc to take '
                             f'roi_head.in_channels={roi.in_channels} inputs, but it takes '
                             f'{head_fc.in_features}; set share_fc=False')
        aug = self.data_preprocessor.rm_augment
        if roi.omega > 0 and not aug.use_history:
            raise ValueError('RMClassifier: RecursiveMixBatchAugment(use_history=False) has no '
                             'historical prediction to be consistent with; set '
                             'roi_head.omega=0 for the "no HIS" ablation')

    def _history_target(self, logits: torch.Tensor) -> torch.Tensor:
        """p^h for the first N samples, pairing sample i with history sample i as the augment
        does; zeros where there is no usable history (then lam is 0 and the term weighs 0)."""
        hist = self._hist_logits
        n = logits.size(0)
        if hist is None or hist.size(0) < n or hist.shape[1:] != logits.shape[1:]:
            return torch.zeros_like(logits)
        return hist[:n]

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        """CE on the mixed labels plus the RoI consistency term; updates p^h."""
        if 'rm_box' not in data_samples[0]:
            raise RuntimeError('RMClassifier.loss needs the rm_box/rm_lam fields written by '
                               'RMDataPreprocessor in training mode')
        feats = self.backbone(inputs)
        if isinstance(feats, torch.Tensor):
            feats = (feats, )
        x = self.neck(feats) if self.with_neck else feats
        logits = self.head(x)
        losses = self.head._get_loss(logits, data_samples)

        boxes = torch.stack([s.rm_box for s in data_samples])
        lam = torch.stack([s.rm_lam for s in data_samples])
        roi_logits = self.roi_head(feats[-1], boxes, inputs.shape[-2:], fc=self.head.fc)
        losses['loss_rm'] = self.roi_head.loss(roi_logits, self._history_target(logits), lam)
        self._hist_logits = logits.detach()
        return losses
