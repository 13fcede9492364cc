"""Checks of the training targets against the classifier, with errors that name the rule.

A label equal to ``num_classes`` (or negative), a float label, a soft score of another width,
a score row that is negative, not finite or does not sum to 1, or a data preprocessor set to
another class count otherwise train silently on wrong targets (a row summing to 16 gives a
loss of 36 instead of 2.3; a negative score a negative loss) or surface as an index error deep
in a scatter. These checks run on the host, on what the dataset gave, before the targets are
made and so before the first optimizer step. Tensors already on a device are checked only where
that costs no device synchronisation (their dtype and width); the dataset's are host tensors.
"""
from typing import Optional, Sequence

import torch

#: how far a ``gt_score`` row may sum from 1 (float32 rounding of soft targets such as label
#: smoothing or an earlier mix is ~1e-6; a mistaken target is off by far more)
SCORE_SUM_TOL = 1e-3


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
    """Before the targets are made: every ``gt_score`` a distribution over ``num_classes``
    classes (:func:`check_scores`), else every ``gt_label`` an integer in ``[0, num_classes)``
    (:func:`check_labels`). Errors name the sample's index in the batch and the rule."""
    if not samples:
        return
    first = samples[0]
    if 'gt_score' in first:
        scores = [s.gt_score for s in samples]
        widths = sorted({int(v.numel()) for v in scores})
        if num_classes and widths != [num_classes]:
            raise ValueError(
                f'{owner}: the samples\' gt_score have {widths} entries but the classifier has '
                f'num_classes={num_classes} classes; give soft targets of width {num_classes} '
                '(or set the head and data_preprocessor num_classes to the width of the scores)')
        if len(widths) == 1 and all(v.device.type == 'cpu' for v in scores):
            check_scores(owner, torch.stack([v.reshape(-1) for v in scores]))
        return
    if 'gt_label' not in first:
        return
    labels = [torch.as_tensor(s.gt_label).reshape(-1) for s in samples]
    sample_of = torch.repeat_interleave(torch.arange(len(labels)),
                                        torch.tensor([len(v) for v in labels]))
    check_labels(owner, torch.cat(labels), num_classes, sample_of)


def check_scores(owner: str, scores: torch.Tensor) -> None:
    """Every row of the host ``(N, K)`` ``scores`` finite, non-negative and summing to 1
    within :data:`SCORE_SUM_TOL`: a distribution over the classes, as every mixing rule and
    the soft cross-entropy assume."""
    if scores.device.type != 'cpu' or scores.numel() == 0:
        return
    scores = scores.double()
    finite = torch.isfinite(scores).all(1)
    negative = (scores < 0).any(1)
    off_sum = (scores.sum(1) - 1).abs() > SCORE_SUM_TOL
    for bad, rule in ((~finite, 'every entry finite'), (negative, 'every entry >= 0'),
                      (finite & off_sum, f'the entries sum to 1 (within {SCORE_SUM_TOL:g})')):
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(
                f'{owner}: gt_score of sample {i} of the batch breaks the rule "{rule}": '
                f'{_row(scores[i])}; soft targets must be class distributions (check the '
                'dataset\'s scores or the transform that made them)')


def check_labels(owner: str, labels: torch.Tensor, num_classes: Optional[int],
                 sample_of: Optional[torch.Tensor] = None) -> None:
    """Every entry of ``labels`` an integer class index in ``[0, num_classes)``. The dtype is
    checked wherever the tensor lives (no data is read); the values only on the host.
    ``sample_of[j]`` is the batch index of the sample that gave ``labels[j]`` (default ``j``)."""
    if labels.numel() == 0:
        return
    if labels.dtype == torch.bool or labels.dtype.is_floating_point or labels.is_complex():
        i = 0 if sample_of is None else int(sample_of[0])
        raise ValueError(
            f'{owner}: gt_label of sample {i} of the batch is {labels.dtype}, but the rule is '
            '"gt_label holds integer class indices" (soft or fractional targets go in '
            'gt_score, e.g. DataSample.set_gt_score)')
    if labels.device.type != 'cpu' or not num_classes:
        return
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        j = int(bad.nonzero()[0])
        i = j if sample_of is None else int(sample_of[j])
        raise ValueError(
            f'{owner}: gt_label {int(labels[j])} of sample {i} of the batch is outside the '
            f'allowed 0 .. {num_classes - 1} (num_classes={num_classes}); labels must be class '
            'indices below num_classes: check the dataset\'s labels, head.num_classes and '
            'data_preprocessor.num_classes')


def _row(row: torch.Tensor, most: int = 6) -> str:
    values = ', '.join(f'{v:.4g}' for v in row[:most].tolist())
    more = f', ... ({row.numel()} entries, sum {float(row.sum()):.4g})' \
        if row.numel() > most else f' (sum {float(row.sum()):.4g})'
    return f'[{values}{more}]'
