"""Pictures of recursive-mixed training batches (paper Figs. 1-3)."""
import copy
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

Box = Tuple[float, float, float, float]


def _training_copy(preprocessor, resize: Optional[bool] = None):
    pre = copy.deepcopy(preprocessor)
    aug = getattr(pre, 'rm_augment', None)
    if aug is None:  # an RM augment inside a plain ClsDataPreprocessor
        augs = getattr(getattr(pre, 'batch_augments', None), 'augments', None) or []
        aug = next((a for a in augs if hasattr(a, 'history_inputs')), None)
    if aug is not None:
        aug.reset()
        if resize is not None:
            aug.resize = resize
    # RMDataPreprocessor insists on its classifier; this is a read-only look at its output.
    if hasattr(pre, '_owned_by_rm_classifier'):
        pre._owned_by_rm_classifier = True
    return pre, aug


def batch_targets(out: dict) -> torch.Tensor:
    """The ``(N, K)`` training targets in a data preprocessor's output: RMDataPreprocessor's
    batch-level ``rm_mix.scores``, else the samples' ``gt_score`` (mmpretrain's)."""
    if out.get('rm_mix') is not None:
        return out['rm_mix'].scores
    return torch.stack([s.gt_score for s in out['data_samples']])


def run_batch_augment(preprocessor, batches: Iterable[dict], iters: int):
    """Feed ``iters`` loader batches through a copy of ``preprocessor`` in training mode.

    Returns ``(inputs, scores, boxes)`` of the last batch: the normalised mixed images
    (N, C, H, W), their soft labels (N, K) and the box of each step as (x1, y1, x2, y2).
    The original preprocessor (and its history) is left untouched.
    """
    steps = run_batch_augment_steps(preprocessor, batches, iters)
    return steps[-1]['inputs'], steps[-1]['scores'], [s['box'] for s in steps]


def run_batch_augment_steps(preprocessor, batches: Iterable[dict], iters: int,
                            resize: Optional[bool] = None) -> List[dict]:
    """Like :func:`run_batch_augment`, but returns every step: a list of
    ``dict(inputs=(N, C, H, W), scores=(N, K), box=(x1, y1, x2, y2) or None, lam=float)``.

    ``resize`` overrides the RM augment's ``resize`` (False: the "cut" ablation, Fig. 3).
    Batches are deep-copied, so a list of batches can be replayed through another copy.
    """
    pre, aug = _training_copy(preprocessor, resize)
    steps = []
    for _, data in zip(range(iters), batches):
        out = pre(copy.deepcopy(data), True)
        steps.append(
            dict(inputs=out['inputs'],
                 scores=batch_targets(out),
                 box=tuple(aug.last_box) if aug is not None else None,
                 lam=float(aug.last_lam) if aug is not None else None))
    if not steps:
        raise ValueError('run_batch_augment: the loader gave no batch')
    return steps


def nested_boxes(boxes: Sequence[Optional[Box]], size: Tuple[int, int]) -> List[Box]:
    """Where the pastes of earlier steps sit in the image of the last step (ResizeFill only).

    ``boxes[t]`` is the box step ``t`` pasted the (whole) batch of step ``t - 1`` into; ``size``
    is ``(H, W)``. Returns the last box, then the box of the step before mapped into it, and so
    on (outermost first), stopping at the first step that pasted nothing.
    """
    h, w = size
    out: List[Box] = []
    # affine map from the image of step t to the image of the last step: x -> ox + sx * x
    ox, oy, sx, sy = 0., 0., 1., 1.
    for box in reversed(list(boxes)):
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            break
        x1, y1, x2, y2 = box
        out.append((ox + sx * x1, oy + sy * y1, ox + sx * x2, oy + sy * y2))
        ox, oy = ox + sx * x1, oy + sy * y1
        sx, sy = sx * (x2 - x1) / w, sy * (y2 - y1) / h
    return out


def to_images(inputs: torch.Tensor, mean: Optional[torch.Tensor],
              std: Optional[torch.Tensor]) -> np.ndarray:
    """Undo normalisation: (N, C, H, W) float -> (N, H, W, C) uint8."""
    x = inputs.detach().float().cpu()
    if mean is not None:
        x = x * std.cpu().view(1, -1, 1, 1) + mean.cpu().view(1, -1, 1, 1)
    return x.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


def label_lines(score: torch.Tensor, classes: Sequence[str], topk: int = 3,
                threshold: float = 1e-3) -> List[str]:
    """'name weight' for the largest label weights of one sample."""
    values, idx = score.float().topk(min(topk, score.numel()))
    return [f'{classes[i] if i < len(classes) else i}: {v:.3f}'
            for v, i in zip(values.tolist(), idx.tolist()) if v > threshold]


BOX_COLOURS = ('red', 'orange', 'yellow', 'lime', 'cyan', 'magenta')


def save_mix_grid(columns: Sequence[dict], path: str, classes: Sequence[str],
                  num_samples: int = 8, title: Optional[str] = None, topk: int = 3,
                  cell_size: Tuple[float, float] = (2.4, 2.9), dpi: int = 80) -> str:
    """Write a PNG grid: one row per sample, one column per entry of ``columns``.

    Each column is ``dict(name=str, images=(N, H, W, C) uint8, scores=(N, K), box=(x1, y1,
    x2, y2) or None)``, optionally with ``boxes`` (a list of boxes, outermost first, e.g. from
    :func:`nested_boxes`) drawn instead of ``box``; the boxes are outlined and every cell shows
    its ``topk`` label weights underneath. ``cell_size`` is inches per cell at ``dpi``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = min(num_samples, min(len(c['images']) for c in columns))
    fig, axes = plt.subplots(rows, len(columns), squeeze=False,
                             figsize=(cell_size[0] * len(columns), cell_size[1] * rows))
    for j, col in enumerate(columns):
        boxes = col.get('boxes')
        if boxes is None:
            boxes = [col['box']] if col.get('box') is not None else []
        for i in range(rows):
            ax = axes[i][j]
            img = col['images'][i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                      cmap='gray' if img.shape[-1] == 1 else None, vmin=0, vmax=255)
            for depth, box in enumerate(boxes):
                if box[2] > box[0] and box[3] > box[1]:
                    ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0],
                                           box[3] - box[1], fill=False,
                                           edgecolor=BOX_COLOURS[depth % len(BOX_COLOURS)],
                                           lw=1))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel('\n'.join(label_lines(col['scores'][i], classes, topk)), fontsize=7)
            if i == 0:
                ax.set_title(col['name'], fontsize=9)
    top = 1.
    if title:
        fig.suptitle(title, fontsize=10)
        top = 1. - 0.3 / fig.get_figheight()  # room for the title above the column names
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
