"""Class activation maps (Zhou et al. 2016, the paper's [65]) for paper Figs. 6-7."""
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ['class_activation_maps', 'overlay_cam']


def class_activation_maps(model: torch.nn.Module, inputs: torch.Tensor,
                          target: Optional[Sequence[int]] = None):
    """Plain CAM of an ``ImageClassifier`` / ``RMClassifier`` whose head is a linear ``fc`` on
    the global-average-pooled last backbone map: ``M_k = sum_c w_kc F_c`` (Zhou et al. 2016).

    Args:
        inputs: normalised ``(N, C, H, W)``.
        target: class per image; default the predicted one.

    Returns:
        ``(cams, classes, probs)``: ``(N, H, W)`` maps upsampled to the input and min-max
        normalised to [0, 1] per image, the class of each map, and its softmax probability.
    """
    import torch.nn.functional as F
    neck = getattr(model, 'neck', None)
    if neck is not None and type(neck).__name__ != 'GlobalAveragePooling':
        raise ValueError(f'CAM needs a GlobalAveragePooling neck, got {type(neck).__name__}')
    fc = getattr(model.head, 'fc', None)
    if not isinstance(fc, torch.nn.Linear):
        raise ValueError(f'CAM needs a head with a linear fc, got {type(model.head).__name__}')
    with torch.no_grad():
        feats = model.backbone(inputs)
        fmap = feats[-1] if isinstance(feats, (tuple, list)) else feats
        logits = fc(fmap.float().mean((2, 3)))
        probs = logits.softmax(1)
        cls = (probs.argmax(1) if target is None else torch.as_tensor(
            list(target), device=probs.device)).long()
        weights = fc.weight[cls].float()  # (N, C)
        cam = torch.einsum('nc,nchw->nhw', weights, fmap.float())
        cam = F.interpolate(cam[:, None], size=inputs.shape[-2:], mode='bilinear',
                            align_corners=False)[:, 0]
        lo = cam.flatten(1).min(1)[0].view(-1, 1, 1)
        hi = cam.flatten(1).max(1)[0].view(-1, 1, 1)
        cam = (cam - lo) / (hi - lo).clamp_min(1e-12)
        p = probs.gather(1, cls[:, None])[:, 0]
    return cam.cpu(), cls.cpu().tolist(), p.cpu().tolist()


def overlay_cam(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (H, W, 3 or 1) uint8 and ``cam`` (H, W) in [0, 1] -> jet overlay (H, W, 3)."""
    import matplotlib
    img = image.astype(np.float32) / 255.
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, -1)
    heat = matplotlib.colormaps['jet'](np.clip(cam, 0, 1))[..., :3]
    return np.clip((1 - alpha) * img + alpha * heat, 0, 1)
