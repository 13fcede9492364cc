"""Checks of the training targets against the classifier, with errors that name the option.

A label equal to ``num_classes`` (or negative), a soft score of another width or a data
preprocessor set to another class count otherwise surface as an index or shape error deep in a
scatter or the loss. These checks run on the host, on what the dataset gave (no device
synchronisation), before the targets are made.
"""
from typing import Optional, Sequence

import torch


def check_num_classes(owner: str, data_preprocessor, num_classes: int) -> None:
    """At build time: the data preprocessor's ``num_classes`` (when set) is the head's."""
    pre_k = getattr(data_preprocessor, 'num_classes', None)
    if pre_k is not None and int(pre_k) != int(num_classes):
        raise ValueError(
            f'{owner}: data_preprocessor.num_classes={pre_k} but the classifier has '
            f'{num_classes} classes (head.num_classes): the one-hot targets must be as wide as '
            f'the logits; set data_preprocessor.num_classes={num_classes} (or leave it unset '
            'where the dataset tells it)')


def check_targets(owner: str, samples: Optional[Sequence], num_classes: Optional[int]) -> None:
    """Before the targets are made: every ``gt_label`` in ``[0, num_classes)`` and every
    ``gt_score`` ``num_classes`` wide. Labels already on a device are not read (that would
    synchronise); the dataset's labels are host tensors."""
    if not samples or not num_classes:
        return
    first = samples[0]
    if 'gt_score' in first:
        widths = sorted({int(s.gt_score.numel()) for s in samples})
        if widths != [num_classes]:
            raise ValueError(
                f'{owner}: the samples\' gt_score have {widths} entries but the classifier has '
                f'num_classes={num_classes} classes; give soft targets of width {num_classes} '
                '(or set the head and data_preprocessor num_classes to the width of the scores)')
        return
    if 'gt_label' not in first:
        return
    labels = [s.gt_label for s in samples]
    if any(torch.is_tensor(v) and v.device.type != 'cpu' for v in labels):
        return
    check_labels(owner, torch.cat([torch.as_tensor(v).reshape(-1) for v in labels]),
                 num_classes)


def check_labels(owner: str, labels: torch.Tensor, num_classes: int) -> None:
    """Every entry of the host tensor ``labels`` in ``[0, num_classes)``."""
    if labels.device.type != 'cpu' or labels.numel() == 0:
        return
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f'{owner}: gt_label {sorted(set(bad.tolist()))} outside the allowed 0 .. '
            f'{num_classes - 1} (num_classes={num_classes}); labels must be class indices below '
            'num_classes: check the dataset\'s labels, head.num_classes and '
            'data_preprocessor.num_classes')
