"""Checks of the training targets against the classifier, with errors that name the rule.

A label equal to ``num_classes`` (or negative), a float label, a soft score of another width,
a score row that is negative, not finite or does not sum to 1, or a data preprocessor set to
another class count otherwise train silently on wrong targets (a row summing to 16 gives a
loss of 36 instead of 2.3; a negative score a negative loss) or surface as an index error deep
in a scatter. These checks run on the host, on what the dataset gave, before the targets are
made and so before the first optimizer step. Tensors already on a device are checked only where
that costs no device synchronisation (their dtype and width); the dataset's are host tensors.

A label can reach a ``DataSample`` without ``set_gt_label`` (``sample.gt_label = 3``): every
form MMPretrain's ``format_label`` accepts (an int, a numpy integer, a 0-d or 1-d integer
tensor or array, a list of ints) is normalised here to the 1-d int64 tensor it would make;
anything else (a str, a float, a (1, 1) tensor, ...) is refused naming the sample and the rule.
"""
import numbers
from typing import Optional, Sequence

import numpy as np
import torch

#: how far a float32 ``gt_score`` row may sum from 1: its rounding (label smoothing, an
#: earlier mix) is ~1e-6, a mistaken target is off by far more; see :func:`score_sum_tolerance`
SCORE_SUM_TOL = 1e-3

LABEL_RULE = 'gt_label holds integer class indices: an int or a 1-d integer tensor'
SCORE_RULE = 'gt_score is a 1-d tensor of class scores'


def score_sum_tolerance(dtype: torch.dtype, num_classes: int) -> float:
    """How far a row of ``num_classes`` scores held in ``dtype`` may sum from 1:
    :data:`SCORE_SUM_TOL`, plus two roundings of ``dtype`` (each entry rounded when the row
    was made or cast, relative to the entry, so at most ``eps / 2`` of the sum per rounding:
    bfloat16 alone moves a valid row's sum by up to ~4e-3), plus the rounding of a sum over
    the K entries in the accumulating type (float32 for the half types, as torch sums them).
    bfloat16: 0.017 at K = 10; float16: 0.003; float32: 0.001 (0.0022 at K = 10^4)."""
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.  # int / bool: exact
    acc = torch.finfo(torch.promote_types(dtype, torch.float32)).eps
    return SCORE_SUM_TOL + 2 * eps + num_classes * acc


def format_targets(owner: str, samples: Sequence) -> None:
    """Normalise, in place, each sample's ``gt_label`` to a 1-d int64 tensor and ``gt_score``
    to a 1-d tensor, as MMPretrain's ``set_gt_label`` / ``set_gt_score`` would have made them;
    a value no such call accepts is refused with the sample's index and the rule. Tensors
    already in that form are left as they are (no copy, no device work)."""
    for i, sample in enumerate(samples):
        if 'gt_label' in sample:
            label = _format_label(owner, i, sample.gt_label)
            if label is not sample.gt_label:
                sample.gt_label = label
        if 'gt_score' in sample:
            score = _format_score(owner, i, sample.gt_score)
            if score is not sample.gt_score:
                sample.gt_score = score


def _refuse(owner: str, i: int, field: str, what: str, rule: str, hint: str) -> None:
    raise ValueError(f'{owner}: {field} of sample {i} of the batch is {what}, but the rule is '
                     f'"{rule}" ({hint})')


def _format_label(owner: str, i: int, value) -> torch.Tensor:
    hint = 'set it with DataSample.set_gt_label(index)'
    if isinstance(value, str):
        _refuse(owner, i, 'gt_label', f'the str {value!r}', LABEL_RULE,
                'map class names to their indices in the dataset, then ' + hint)
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Number)
                                               and not isinstance(value, numbers.Integral)):
        _refuse(owner, i, 'gt_label', f'the {type(value).__name__} {value!r}', LABEL_RULE,
                'soft or fractional targets go in gt_score, e.g. DataSample.set_gt_score')
    if isinstance(value, numbers.Integral):
        return torch.tensor([int(value)])
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    elif isinstance(value, (list, tuple)):
        try:
            value = torch.tensor(value)
        except (TypeError, ValueError, RuntimeError):
            _refuse(owner, i, 'gt_label', f'the {type(value).__name__} {value!r}', LABEL_RULE,
                    hint)
    if not isinstance(value, torch.Tensor):
        _refuse(owner, i, 'gt_label', f'a {type(value).__name__}', LABEL_RULE, hint)
    if value.dim() == 0:
        value = value.reshape(1)
    if value.dim() != 1:
        _refuse(owner, i, 'gt_label', f'a tensor of shape {tuple(value.shape)}', LABEL_RULE,
                hint + ', or flatten it')
    # int64, what one_hot / scatter_ index with; the dtype rule itself: check_labels
    is_int = not (value.dtype.is_floating_point or value.is_complex()
                  or value.dtype == torch.bool)
    return value.long() if is_int else value


def _format_score(owner: str, i: int, value) -> torch.Tensor:
    hint = 'set it with DataSample.set_gt_score(scores)'
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value).float()
    elif isinstance(value, (list, tuple)):
        try:
            value = torch.tensor(value).float()
        except (TypeError, ValueError, RuntimeError):
            _refuse(owner, i, 'gt_score', f'the {type(value).__name__} {value!r}', SCORE_RULE,
                    hint)
    if not isinstance(value, torch.Tensor):
        _refuse(owner, i, 'gt_score', f'a {type(value).__name__}', SCORE_RULE, hint)
    if value.dim() != 1:
        _refuse(owner, i, 'gt_score', f'a tensor of shape {tuple(value.shape)}', SCORE_RULE,
                hint)
    return value


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
    """Before the targets are made: the samples' targets in MMPretrain's forms
    (:func:`format_targets`, in place), then every ``gt_score`` a distribution over
    ``num_classes`` classes (:func:`check_scores`), else every ``gt_label`` an integer in
    ``[0, num_classes)`` (:func:`check_labels`). Errors name the sample's index in the batch and
    the rule."""
    if not samples:
        return
    format_targets(owner, samples)
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
            tol = max(score_sum_tolerance(v.dtype, widths[0]) for v in scores)
            check_scores(owner, torch.stack([v.double() for v in scores]), tol)
        return
    if 'gt_label' not in first:
        return
    labels = [s.gt_label for s in samples]
    sample_of = torch.repeat_interleave(torch.arange(len(labels)),
                                        torch.tensor([len(v) for v in labels]))
    check_labels(owner, torch.cat(labels), num_classes, sample_of)


def check_scores(owner: str, scores: torch.Tensor, tol: Optional[float] = None) -> None:
    """Every row of the host ``(N, K)`` ``scores`` finite, non-negative and summing to 1
    within ``tol`` (default :func:`score_sum_tolerance` of their dtype): a distribution over
    the classes, as every mixing rule and the soft cross-entropy assume."""
    if scores.device.type != 'cpu' or scores.numel() == 0:
        return
    if tol is None:
        tol = score_sum_tolerance(scores.dtype, scores.size(1))
    scores = scores.double()
    finite = torch.isfinite(scores).all(1)
    negative = (scores < 0).any(1)
    off_sum = (scores.sum(1) - 1).abs() > tol
    for bad, rule in ((~finite, 'every entry finite'), (negative, 'every entry >= 0'),
                      (finite & off_sum, f'the entries sum to 1 (within {tol:.2g})')):
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
            f'"{LABEL_RULE}" (soft or fractional targets go in gt_score, e.g. '
            'DataSample.set_gt_score)')
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
