"""Build-time checks of an :class:`RMClassifier`: the head computes its loss the way RM's mixed
targets need, and the RoI consistency head fits the main classifier."""
from typing import Optional

import torch.nn as nn
from mmpretrain.models.heads import ClsHead

#: heads whose ``loss`` override only refuses distillation (checked at build time) and is
#: otherwise ClsHead's
_LOSS_ONLY_REFUSES_DISTILLATION = ('EfficientFormerClsHead', )


def check_head_loss(head) -> None:
    """:meth:`RMClassifier.loss` computes ``head.loss_module(head(feats), scores)``, which is
    the head's own loss only where neither ``loss`` nor ``_get_loss`` is overridden: ArcFace,
    say, adds its margin inside its ``loss`` and would silently train without it here."""
    own_loss = isinstance(head, ClsHead) and [
        cls.__name__ for cls in type(head).__mro__[:type(head).__mro__.index(ClsHead)]
        if ('loss' in vars(cls) or '_get_loss' in vars(cls))
        and cls.__name__ not in _LOSS_ONLY_REFUSES_DISTILLATION]
    if not isinstance(head, ClsHead) or own_loss:
        raise ValueError(
            f'RMClassifier: the head {type(head).__name__} does not compute its loss as '
            "ClsHead does (loss_module on the logits and the batch's targets), which the "
            'mixed RM targets need; use a ClsHead-based head (LinearClsHead, '
            'VisionTransformerClsHead, StackedLinearClsHead, ...)')
    if getattr(head, 'cal_acc', False):
        raise ValueError('RMClassifier: head.cal_acc=True needs hard labels, but RM mixes '
                         'them; set cal_acc=False')
    if getattr(head, 'dist', False) or getattr(head, 'distillation', False):
        raise ValueError(f'RMClassifier: {type(head).__name__} with a distillation token '
                         'cannot be trained in MMPretrain (it needs a teacher); set '
                         'distillation=False')


def check_roi_head(roi, num_classes: int, width: Optional[int], head: nn.Module,
                   final_linear: Optional[nn.Linear], final_linear_name: Optional[str],
                   pooled_at: str) -> None:
    """The RoI head fits the main classifier: its classes, the pooled map's width and, with
    ``share_fc``, a main classifier that is one linear layer on that map."""
    if roi.num_classes != num_classes:
        raise ValueError(f'RMClassifier: roi_head.num_classes={roi.num_classes} must equal '
                         f'the main classifier num_classes={num_classes}')
    if width is not None and roi.in_channels != width:
        raise ValueError(f'RMClassifier: roi_head.in_channels={roi.in_channels} must equal '
                         f'the channels of the map pooled at {pooled_at}, '
                         f'which the main classifier sees as {width}')
    if roi.share_fc:
        if final_linear is None:
            raise ValueError('RMClassifier: roi_head.share_fc=True needs a final linear '
                             f'classifier to share; {type(head).__name__} has none: '
                             'set share_fc=False')
        if final_linear.in_features != roi.in_channels:
            raise ValueError(
                f'RMClassifier: roi_head.share_fc=True needs the main classifier '
                f'({final_linear_name}) to take the pooled map\'s '
                f'{roi.in_channels} channels, but it takes {final_linear.in_features} '
                '(the head transforms the pooled feature first); set share_fc=False')
        # a norm or a layer of the same width before it (LeViT's BN1d) would be skipped
        # by H', which then is not the main classifier though the widths agree
        before = [f'head.{n}' for n, m in head.named_modules()
                  if m is not final_linear and any(True for _ in m.parameters(False))]
        if before:
            raise ValueError(
                f'RMClassifier: roi_head.share_fc=True needs the main classifier '
                f'({final_linear_name}) to be the only layer with weights in the '
                f'head, but {", ".join(before)} transforms the pooled feature too; set '
                'share_fc=False')
