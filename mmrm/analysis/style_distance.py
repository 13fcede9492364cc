"""Class style distances for StyleCutMix's auto-gamma rule (Hong et al., CVPR 2021), computed as
the StyleMix authors' ``makeStyleDistanceMatrix.py``: the 1920-d AdaIN style vector (means and
stds of VGG relu1_1 .. relu4_1) of every training image, averaged per class; the distance of two
classes is the mean squared difference of their average vectors."""
from typing import Iterable, Optional

import torch
import torch.nn.functional as F

__all__ = ['class_style_distance']


def class_style_distance(style_net, batches: Iterable, num_classes: int, style_size: int = 224,
                         preprocess=None, max_batches: Optional[int] = None) -> torch.Tensor:
    """(K, K) distance matrix, zero diagonal (StyleCutMix raises it by 2 itself).

    Args:
        style_net: an ``AdaINStyleTransfer`` (its ``style_vector``).
        batches: the training loader (dicts of ``inputs`` and ``data_samples``).
        num_classes (int): K.
        style_size (int): side the images are resized to (bilinear), as in training.
        preprocess: the model's data preprocessor (normalises as in training; the authors feed
            the normalised images). None feeds ``inputs`` as float.
        max_batches (int, optional): stop after this many batches.
    """
    total = torch.zeros(num_classes, 1920, dtype=torch.float64)
    count = torch.zeros(num_classes, dtype=torch.float64)
    with torch.no_grad():
        for i, data in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            data = preprocess(data, False) if preprocess is not None else data
            x = data['inputs'].float()
            labels = torch.cat([s.gt_label for s in data['data_samples']]).long()
            x = F.interpolate(x, size=(style_size, style_size), mode='bilinear',
                              align_corners=False)
            vec = style_net.style_vector(x).double()
            total.index_add_(0, labels, vec)
            count.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
    if (count == 0).any():
        missing = torch.nonzero(count == 0).flatten().tolist()
        raise ValueError(f'class_style_distance: no image of classes {missing} was seen')
    mean = total / count[:, None]
    return (mean[:, None] - mean[None]).pow(2).mean(-1).float()
