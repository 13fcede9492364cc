"""The downstream models as data (``configs/downstream/fashion_mnist/models.json``, with the
paper's numbers) and what they are scored by.

Segmentation's headline mIoU is the mean IoU over the 10 Fashion-MNIST classes, the background
left out (:func:`object_miou`, from the per-class IoU that ``ClassIoUMetric`` returns); mmseg's
own mIoU over all 11 classes stands beside it.
"""
import json
import math
import os.path as osp
import statistics
from dataclasses import dataclass
from typing import Dict, Mapping, Sequence, Tuple

from ..records import REPO_ROOT

__all__ = ['DownstreamModel', 'DOWNSTREAM_MODELS', 'PAPER_METHODS', 'METHOD_ORDER',
           'LONG_METHODS', 'SPLITS', 'COMPARISONS', 'OBJECT_MIOU', 'OBJECT_CLASSES',
           'load_models', 'object_miou', 'derived_metrics', 'check_split']

MODELS_FILE = 'configs/downstream/fashion_mnist/models.json'
PAPER_METHODS = ('baseline', 'cutmix', 'rm')
#: the table's row order (other methods follow, sorted)
METHOD_ORDER = ('scratch', 'scratch-long', 'baseline', 'cutmix', 'rm')
#: methods fine-tuned on a longer schedule than the others: their time is shown apart
LONG_METHODS = ('scratch-long',)
#: the canvases a table can show: the reported test scores, or the val scores for choices
SPLITS = ('test', 'val')
#: the paired differences the table reports: (method, minus method)
COMPARISONS = (('rm', 'cutmix'), ('rm', 'baseline'))
#: the derived metric key of the mean IoU over the object classes (background left out)
OBJECT_MIOU = 'mIoU.objects'
#: the object classes of the canvases (the label maps' 1-10; 0 is the background)
OBJECT_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                  'Sneaker', 'Bag', 'Ankle boot')


@dataclass(frozen=True)
class DownstreamModel:
    """One downstream model of the paper: its offline config and what it is scored by."""
    name: str
    title: str
    config: str
    task: str  # 'det' or 'seg': their loops differ (epochs / iterations)
    #: (column name, key in the evaluator's metrics, scale to percent)
    metrics: Tuple[Tuple[str, str, float], ...]
    #: the paper's ResNet-50 numbers per metric column (not every column has one), in
    #: :data:`PAPER_METHODS` order
    paper: Dict[str, Tuple[float, ...]]
    #: rough minutes of one fine-tuning on one core (longest first; the first ETA)
    minutes: float = 5.


def load_models(path: str = osp.join(REPO_ROOT, MODELS_FILE)) -> Dict[str, DownstreamModel]:
    """``{name: DownstreamModel}`` of the models file, in its order."""
    with open(path) as f:
        spec = json.load(f)
    return {
        m['name']: DownstreamModel(
            m['name'], m['title'], m['config'], m['task'],
            tuple((x['column'], x['key'], float(x['scale'])) for x in m['metrics']),
            {c: tuple(v[p] for p in PAPER_METHODS) for c, v in m['paper'].items()},
            float(m['minutes']))
        for m in spec['models']
    }


DOWNSTREAM_MODELS: Dict[str, DownstreamModel] = load_models()


def object_miou(metrics: Mapping[str, float],
                classes: Sequence[str] = OBJECT_CLASSES) -> float:
    """Mean of ``metrics['IoU.<class>']`` over ``classes`` (the 10 objects: the background
    is not among them), NaN entries (a class neither labelled nor predicted) skipped as
    mmseg's own nanmean skips them; NaN if every one is NaN."""
    missing = [c for c in classes if f'IoU.{c}' not in metrics]
    if missing:
        raise KeyError(f'per-class IoU of {missing} missing from the metrics {sorted(metrics)} '
                       '(the segmentors are scored with ClassIoUMetric)')
    values = [float(metrics[f'IoU.{c}']) for c in classes]
    finite = [v for v in values if not math.isnan(v)]
    return statistics.mean(finite) if finite else math.nan


def derived_metrics(raw: Mapping[str, float]) -> Dict[str, float]:
    """``raw`` with the metrics computed from it: :data:`OBJECT_MIOU` where the per-class IoU
    are there."""
    out = dict(raw)
    if any(k.startswith('IoU.') for k in raw):
        out[OBJECT_MIOU] = object_miou(raw)
    return out


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f'split must be {" or ".join(SPLITS)}, got {split!r}')
