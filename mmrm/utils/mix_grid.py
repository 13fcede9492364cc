"""Pictures of recursive-mixed training batches (paper Figs. 1-3)."""
import copy
from typing import Iterable, List, Optional, Sequence

import numpy as np
import torch


def run_batch_augment(preprocessor, batches: Iterable[dict], iters: int):
    """Feed ``iters`` loader batches through a copy of ``preprocessor`` in training mode.

    Returns ``(inputs, scores, boxes)`` of the last batch: the normalised mixed images
    (N, C, H, W), their soft labels (N, K) and the box of each step as (x1, y1, x2, y2).
    The original preprocessor (and its history) is left untouched.
    """
    pre = copy.deepcopy(preprocessor)
    aug = getattr(pre, 'rm_augment', None)
    if aug is not None:
        aug.reset()
    # RMDataPreprocessor insists on its classifier; this is a read-only look at its output.
    if hasattr(pre, '_owned_by_rm_classifier'):
        pre._owned_by_rm_classifier = True
    boxes = []
    out = None
    for i, data in zip(range(iters), batches):
        out = pre(copy.deepcopy(data), True)
        boxes.append(tuple(aug.last_box) if aug is not None else None)
    if out is None:
        raise ValueError('run_batch_augment: the loader gave no batch')
    scores = torch.stack([s.gt_score for s in out['data_samples']])
    return out['inputs'], scores, boxes


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


def save_mix_grid(columns: Sequence[dict], path: str, classes: Sequence[str],
                  num_samples: int = 8, title: Optional[str] = None) -> str:
    """Write a PNG grid: one row per sample, one column per entry of ``columns``.

    Each column is ``dict(name=str, images=(N, H, W, C) uint8, scores=(N, K), box=(x1, y1,
    x2, y2) or None)``; the box of the last step is outlined and every cell shows its label
    weights underneath.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = min(num_samples, min(len(c['images']) for c in columns))
    fig, axes = plt.subplots(rows, len(columns), squeeze=False,
                             figsize=(2.4 * len(columns), 2.9 * rows))
    for j, col in enumerate(columns):
        for i in range(rows):
            ax = axes[i][j]
            img = col['images'][i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                      cmap='gray' if img.shape[-1] == 1 else None, vmin=0, vmax=255)
            box = col.get('box')
            if box is not None and box[2] > box[0] and box[3] > box[1]:
                ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0],
                                       box[3] - box[1], fill=False, edgecolor='red', lw=1))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel('\n'.join(label_lines(col['scores'][i], classes)), fontsize=7)
            if i == 0:
                ax.set_title(col['name'], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
