"""MMSegmentation's ``IoUMetric`` with every class's IoU among its metrics.

``IoUMetric`` returns only the means (``aAcc``, ``mIoU``, ``mAcc``) and prints the per-class
table to the log. :class:`ClassIoUMetric` returns exactly the same means and, beside them, the
IoU of each class as ``IoU.<class name>`` (percent, unrounded; NaN for a class that is neither
labelled nor predicted anywhere, which ``mIoU``'s nanmean skips too), so that a mean over a subset
of the classes can be computed from a run's metrics file: the transfer table's headline mIoU over
the 10 Fashion-MNIST classes with the background left out
(:func:`mmrm.experiments.transfer.models.object_miou`).
"""
from typing import Dict

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

__all__ = ['ClassIoUMetric']


@METRICS.register_module()
class ClassIoUMetric(IoUMetric):
    """``IoUMetric`` (same arguments, same summary metrics) plus ``IoU.<class>`` per class."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        columns = tuple(zip(*results))
        intersect, union = sum(columns[0]), sum(columns[1])
        iou = (intersect.double() / union.double() * 100).tolist()  # 0 / 0: NaN
        for name, value in zip(self.dataset_meta['classes'], iou):
            metrics[f'IoU.{name}'] = float(value)
        return metrics
