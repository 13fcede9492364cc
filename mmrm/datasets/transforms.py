"""Cutout as DeVries & Taylor ("Improved Regularization of Convolutional Neural Networks with
Cutout", 2017) run it: the square is clipped at the image border."""
import numbers
from typing import Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from mmrm.models.utils.options import check_number, check_numbers


@TRANSFORMS.register_module()
class ClippedCutout(BaseTransform):
    r"""Fill one square of each image with ``pad_val``, clipped at the border.

    With probability ``prob``, for an image ``(H, W[, C])`` and a square of side ``(h, w)``
    (``shape``): the centre :math:`y \sim U\{0..H-1\}, x \sim U\{0..W-1\}` (``np.random``) and

    .. math:: [\mathrm{clip}(y - \lfloor h/2 \rfloor, 0, H),\ \mathrm{clip}(y + \lfloor h/2
              \rfloor, 0, H)) \times [\mathrm{clip}(x - \lfloor w/2 \rfloor, 0, W),\
              \mathrm{clip}(x + \lfloor w/2 \rfloor, 0, W))

    is filled, as the authors' ``Cutout`` class (their mask zeroes the normalised image: fill
    with the dataset mean here, before normalisation). Near the border only part of the square
    is inside, so the expected cut-out area is below ``h * w``. (MMPretrain's ``Cutout``, i.e.
    ``mmcv.cutout``, shifts the square inward at full size near the top / left border and
    clips it only at the bottom / right: another distribution.)

    Args:
        shape (int | tuple[int, int]): side, or ``(h, w)``, of the square, >= 1.
        pad_val (number | tuple): fill value, one per channel or one for all.
        prob (float): probability of cutting an image, in [0, 1]. Defaults to 1.
    """

    def __init__(self, shape: Union[int, Sequence[int]], pad_val: Union[float, Sequence[float]] = 0,
                 prob: float = 1.0):
        if isinstance(shape, numbers.Integral):
            h = w = check_number('ClippedCutout', 'shape', shape, 1, integer=True,
                                 hint='or (h, w) of such ints')
        else:
            h, w = check_numbers('ClippedCutout', 'shape', shape, 1, integer=True, length=2,
                                 hint='(h, w), or one int for a square')
        if isinstance(pad_val, numbers.Real):
            check_number('ClippedCutout', 'pad_val', pad_val)
        else:
            check_numbers('ClippedCutout', 'pad_val', np.ravel(pad_val).tolist(),
                          hint='one value per channel')
        self.shape, self.pad_val = (h, w), pad_val
        self.prob = check_number('ClippedCutout', 'prob', prob, 0, 1)

    def box(self, height: int, width: int):
        """``(y1, y2, x1, x2)`` of one draw."""
        y, x = np.random.randint(height), np.random.randint(width)
        h, w = self.shape
        return (int(np.clip(y - h // 2, 0, height)), int(np.clip(y + h // 2, 0, height)),
                int(np.clip(x - w // 2, 0, width)), int(np.clip(x + w // 2, 0, width)))

    def transform(self, results: dict) -> dict:
        if self.prob < 1 and not np.random.rand() < self.prob:
            return results
        img = results['img'].copy()
        y1, y2, x1, x2 = self.box(*img.shape[:2])
        fill = np.asarray(self.pad_val, dtype=img.dtype)
        if img.ndim == 3 and fill.size not in (1, img.shape[2]):
            raise ValueError(f'ClippedCutout: pad_val has {fill.size} values for an image of '
                             f'{img.shape[2]} channels')
        img[y1:y2, x1:x2] = fill
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(shape={self.shape}, pad_val={self.pad_val}, '
                f'prob={self.prob})')
