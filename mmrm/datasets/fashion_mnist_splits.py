"""Three disjoint Fashion-MNIST splits: train, a validation split carved from the training
images, and the test split that no choice looks at (DESIGN.md §6).

Fashion-MNIST ships 60k training and 10k test images. Every choice a measurement makes (the best
epoch a pretraining keeps, a learning rate, a schedule, a regime) is made on ``val``; only
``test`` is reported. The carve is a pure function of the labels and a seed: for each class
of ``n`` training images, the first ``min(ceil(n * val_fraction), n - 1)`` images of a seeded
permutation of that class's images are ``val`` (default 1/12: 500 of each class's 6,000, 5,000
images); the rest are ``train`` (55,000), of which ``train_per_class`` (the first of the same
permutation) may be kept for a data-scarce regime. A fraction rather than a count, so that the
small synthetic files of the tests split the same way.
"""
from typing import Optional, Sequence

import numpy as np
from mmpretrain.datasets import FashionMNIST
from mmpretrain.registry import DATASETS

SPLITS = ('train', 'val', 'test')
#: share of each class's training images carved for validation (500 of 6,000: 5,000 of 60,000)
VAL_FRACTION = 1 / 12
#: the seed of the carve; changing it changes every split but test
SPLIT_SEED = 0


def split_indices(labels: Sequence[int], split: str, val_fraction: float = VAL_FRACTION,
                  seed: int = SPLIT_SEED, train_per_class: Optional[int] = None) -> np.ndarray:
    """Sorted indices into the file ``split`` reads (the training file for 'train' and 'val',
    the test file for 'test') of the images of ``split``.

    Args:
        labels: the labels of that file, in file order.
        split: 'train', 'val' or 'test' ('test' is the whole test file).
        val_fraction: share of each class's training images carved for validation, in
            [0, 1); at least one image of each class stays for training.
        seed: seed of the per-class permutation.
        train_per_class: keep only this many training images per class (None: all the rest).
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if split == 'test':
        return np.arange(len(labels))
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) \
            or not 0 <= val_fraction < 1:
        raise ValueError(f'val_fraction must be a number in [0, 1), got {val_fraction!r}')
    if train_per_class is not None and (isinstance(train_per_class, bool) or not isinstance(
            train_per_class, int) or train_per_class < 1):
        raise ValueError(f'train_per_class must be an int >= 1 or None, got {train_per_class!r}')
    rng = np.random.RandomState(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)[rng.permutation(int((labels == c).sum()))]
        n_val = min(int(np.ceil(len(members) * val_fraction - 1e-9)), len(members) - 1)
        if train_per_class is not None and len(members) - n_val < train_per_class:
            raise ValueError(
                f'class {int(c)} has {len(members) - n_val} training images after the '
                f'validation carve, fewer than train_per_class={train_per_class}')
        if split == 'val':
            chosen.append(members[:n_val])
        else:
            rest = members[n_val:]
            chosen.append(rest if train_per_class is None else rest[:train_per_class])
    return np.sort(np.concatenate(chosen))


@DATASETS.register_module()
class FashionMNISTSplit(FashionMNIST):
    """MMPretrain's ``FashionMNIST`` with the three disjoint splits of :func:`split_indices`.

    Args:
        split (str): 'train' (training images minus the validation carve), 'val' (the carve)
            or 'test' (Fashion-MNIST's test images). ``test_mode`` is set from it.
        val_fraction (float): share of each class's training images carved for validation.
            Defaults to 1/12 (500 a class, 5,000 in all).
        train_per_class (int, optional): training images per class (a fixed, class-balanced
            subset, for a data-scarce regime); None keeps all 5,500 a class.
        split_seed (int): seed of the carve. Defaults to 0.
        image_size (int, optional): side the 28x28 images are resized to when they are loaded
            (bicubic, OpenCV's ``INTER_CUBIC``, saturated to uint8), e.g. 56 for the
            resize-fill experiment of the ranking study; None (default) keeps 28x28. Resizing
            once at load time costs no time per iteration.
        **kwargs: the other ``FashionMNIST`` arguments (``data_root``, ``pipeline``, ...).
    """

    def __init__(self, split: str = 'train', val_fraction: float = VAL_FRACTION,
                 train_per_class: Optional[int] = None, split_seed: int = SPLIT_SEED,
                 image_size: Optional[int] = None, **kwargs):
        if split not in SPLITS:
            raise ValueError(f'FashionMNISTSplit: split must be one of {SPLITS}, got {split!r}')
        if image_size is not None and (isinstance(image_size, bool) or not isinstance(
                image_size, int) or image_size < 1):
            raise ValueError(f'FashionMNISTSplit: image_size must be an int >= 1 or None, got '
                             f'{image_size!r}')
        self.image_size = image_size
        kwargs.pop('test_mode', None)  # the split decides which file is read
        self.heldout_split = split
        self.val_fraction = val_fraction
        self.train_per_class = train_per_class
        self.split_seed = split_seed
        super().__init__(split='test' if split == 'test' else 'train',
                         test_mode=split == 'test', **kwargs)

    def load_data_list(self):
        infos = super().load_data_list()
        try:
            keep = split_indices([int(i['gt_label']) for i in infos], self.heldout_split,
                                 self.val_fraction, self.split_seed, self.train_per_class)
        except ValueError as exc:
            raise ValueError(f'FashionMNISTSplit(split={self.heldout_split!r}): {exc}') from exc
        infos = [infos[i] for i in keep]
        if self.image_size is not None:
            import cv2
            side = (self.image_size, self.image_size)
            for info in infos:
                if info['img'].shape[:2] != side:
                    info['img'] = cv2.resize(info['img'], side, interpolation=cv2.INTER_CUBIC)
        return infos
