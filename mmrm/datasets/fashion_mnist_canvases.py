"""Detection and segmentation data from real images, offline: canvases composed of Fashion-MNIST
items, with COCO instance annotations and mmseg semantic label maps.

Each canvas is a black ``size x size`` grey image holding ``min_items``-``max_items`` Fashion-MNIST
items (28x28), each resized by a factor drawn from ``[min_scale, max_scale]`` and placed at a
random position inside the canvas. An item's mask is its own pixels: those of the resized item
at or above ``mask_threshold`` (Fashion-MNIST items are light on a black background). Items are
pasted in order, a later one covering an earlier one where their masks meet; a position is taken
only if the new item covers at most ``max_overlap`` of any visible item and at most
``max_overlap`` of its own mask lies on visible items (up to ``max_tries`` positions are drawn,
then the item is left out), so every instance keeps most of its pixels. Boxes are the tight boxes
of the visible masks.

Written layout (``root``)::

    images/{train,val,test}/000000.png           the canvases, 8-bit grey
    annotations/instances_{train,val,test}.json  COCO: bbox [x, y, w, h], compressed-RLE masks,
                                                 area = mask pixels, iscrowd 0, 10 categories
                                                 (id 1-10); each annotation also names its item
                                                 (``fashion_mnist_file``, ``fashion_mnist_index``)
    seg_maps/{train,val,test}/000000.png         8-bit label maps: 0 background, k + 1 for class k
    meta.json                                    the options and seed that made it

Three disjoint splits (DESIGN.md §6), as :class:`mmrm.datasets.FashionMNISTSplit` carves them:
``train`` canvases draw items only from the ``train`` carve of Fashion-MNIST's training file,
``val`` canvases only from the ``val`` carve of that file (1/12 of each class, seed 0), ``test``
canvases only from Fashion-MNIST's test file. Every choice (schedule, learning rate) is made on
``val``; only ``test`` is reported. Everything is a function of the options and the seed.
"""
import gzip
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = [
    'FASHION_MNIST_CLASSES', 'SEG_CLASSES', 'SEG_PALETTE', 'CanvasOptions', 'load_fashion_mnist',
    'compose_canvas', 'write_canvas_dataset', 'canvas_dataset_ready', 'FashionMNISTMissing'
]

#: Fashion-MNIST's 10 classes, in label order (COCO category ids are label + 1).
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                         'Sneaker', 'Bag', 'Ankle boot')
#: The semantic-segmentation classes: background, then Fashion-MNIST's (label map value = index).
SEG_CLASSES = ('background', ) + FASHION_MNIST_CLASSES
SEG_PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
               [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60],
               [250, 190, 212]]

#: the canvas splits, each with the Fashion-MNIST file its items come from
SPLITS = ('train', 'val', 'test')
SPLIT_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
               'val': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
               'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
#: 2: three disjoint splits (format 1 had val canvases from the test file and no test split)
FORMAT_VERSION = 2


class FashionMNISTMissing(FileNotFoundError):
    """The Fashion-MNIST IDX files are not where they were looked for."""


@dataclass
class CanvasOptions:
    """What a canvas dataset is made of (all of it is recorded in ``meta.json``)."""
    train_num: int = 200
    val_num: int = 200
    #: test canvases; None: as many as val canvases
    test_num: Optional[int] = None
    size: int = 64
    min_items: int = 2
    max_items: int = 3
    min_scale: float = 0.75
    max_scale: float = 1.25
    max_overlap: float = 0.15
    mask_threshold: int = 1
    max_tries: int = 50
    seed: int = 0

    def __post_init__(self):
        if self.test_num is None:
            self.test_num = self.val_num

    def check(self):
        def need(ok, what):
            if not ok:
                raise ValueError(f'canvas option {what} (got {asdict(self)})')
        need(self.train_num >= 1 and self.val_num >= 1 and self.test_num >= 1,
             'train_num, val_num and test_num must be >= 1')
        need(1 <= self.min_items <= self.max_items, 'min_items must be in [1, max_items]')
        need(0 < self.min_scale <= self.max_scale, 'min_scale must be in (0, max_scale]')
        need(round(28 * self.max_scale) <= self.size,
             'size must hold an item at max_scale (28 * max_scale <= size)')
        need(0 <= self.max_overlap < 1, 'max_overlap must be in [0, 1)')
        need(1 <= self.mask_threshold <= 255, 'mask_threshold must be in [1, 255]')
        need(self.max_tries >= 1, 'max_tries must be >= 1')
        return self


def _read_idx(path: str, offset: int) -> np.ndarray:
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_fashion_mnist(folder: str, split: str, with_indices: bool = False):
    """``(images (N, 28, 28) uint8, labels (N,) uint8)`` of ``split`` from ``folder`` (plain or
    ``.gz`` IDX files, as written by ``tools/dataset_converters/prepare_fashion_mnist.py`` or as
    Debian ships them): 'train' and 'val' are the carves of the training file that
    :func:`mmrm.datasets.split_indices` makes (its defaults: 1/12 of each class for 'val', seed
    0), 'test' is the test file. With ``with_indices``, also the items' indices in their file."""
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    paths = []
    for name in SPLIT_FILES[split]:
        for candidate in (osp.join(folder, name), osp.join(folder, name + '.gz')):
            if osp.isfile(candidate):
                paths.append(candidate)
                break
        else:
            raise FashionMNISTMissing(
                f'Fashion-MNIST file {name} not found in {folder}: run `make data` (or '
                'python tools/dataset_converters/prepare_fashion_mnist.py --out '
                f'{folder}) first')
    images = _read_idx(paths[0], 16).reshape(-1, 28, 28)
    labels = _read_idx(paths[1], 8)
    if len(images) != len(labels):
        raise ValueError(f'{paths[0]} holds {len(images)} images but {paths[1]} '
                         f'{len(labels)} labels')
    from .fashion_mnist_splits import split_indices
    keep = split_indices(labels, split)
    if not len(keep):
        raise ValueError(f'the {split} split of the Fashion-MNIST files in {folder} is empty')
    if with_indices:
        return images[keep], labels[keep], keep
    return images[keep], labels[keep]


def _resize(item: np.ndarray, side: int) -> np.ndarray:
    import cv2
    if side == item.shape[0]:
        return item.copy()
    interp = cv2.INTER_AREA if side < item.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(item, (side, side), interpolation=interp)


def compose_canvas(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray,
                   opts: CanvasOptions, sources: Optional[np.ndarray] = None
                   ) -> Tuple[np.ndarray, List[Dict]]:
    """One canvas: ``(image (S, S) uint8, instances)``, each instance a dict with ``label``
    (0-9), ``mask`` (S, S) bool (its visible pixels), ``bbox`` ``[x, y, w, h]`` (tight box of the
    mask, pixel units) and ``source`` (``sources[i]`` for the item ``images[i]``: its index in
    its Fashion-MNIST file; without ``sources``, ``i``)."""
    s = opts.size
    canvas = np.zeros((s, s), np.uint8)
    owner = np.full((s, s), -1, np.int32)  # which instance a pixel shows
    placed: List[Tuple[int, int]] = []  # (source index, label)
    for _ in range(int(rng.integers(opts.min_items, opts.max_items + 1))):
        src = int(rng.integers(len(images)))
        side = int(round(28 * rng.uniform(opts.min_scale, opts.max_scale)))
        item = _resize(images[src], side)
        mask = item >= opts.mask_threshold
        if not mask.any():
            continue
        area = mask.sum()
        for _ in range(opts.max_tries):
            y, x = (int(v) for v in rng.integers(0, s - side + 1, size=2))
            under = owner[y:y + side, x:x + side][mask]
            if (under >= 0).sum() > opts.max_overlap * area:
                continue
            covered = np.bincount(under[under >= 0], minlength=len(placed))
            visible = np.bincount(owner[owner >= 0], minlength=len(placed))
            if (covered > opts.max_overlap * np.maximum(visible, 1)).any():
                continue
            region = canvas[y:y + side, x:x + side]
            region[mask] = item[mask]
            owner[y:y + side, x:x + side][mask] = len(placed)
            placed.append((src if sources is None else int(sources[src]), int(labels[src])))
            break
    instances = []
    for k, (src, label) in enumerate(placed):
        mask = owner == k
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        instances.append(dict(label=label, mask=mask, source=src,
                              bbox=[x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]))
    return canvas, instances


def _coco_split(split: str, names: List[str], all_instances: List[List[Dict]],
                size: int) -> Dict:
    source_file = 'test' if split == 'test' else 'train'
    from pycocotools import mask as mask_utils
    images, annotations = [], []
    for img_id, (name, instances) in enumerate(zip(names, all_instances), start=1):
        images.append(dict(id=img_id, file_name=name, height=size, width=size))
        for inst in instances:
            rle = mask_utils.encode(np.asfortranarray(inst['mask'].astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            annotations.append(dict(
                id=len(annotations) + 1, image_id=img_id, category_id=inst['label'] + 1,
                bbox=[float(v) for v in inst['bbox']], area=float(inst['mask'].sum()),
                segmentation=rle, iscrowd=0, fashion_mnist_file=source_file,
                fashion_mnist_index=int(inst['source'])))
    categories = [dict(id=k + 1, name=name, supercategory='fashion')
                  for k, name in enumerate(FASHION_MNIST_CLASSES)]
    return dict(info=dict(description=f'Fashion-MNIST canvases ({split})', version='1.0'),
                licenses=[dict(id=1, name='MIT (Fashion-MNIST, Zalando Research)')],
                images=images, annotations=annotations, categories=categories)


def canvas_dataset_ready(root: str, opts: Optional[CanvasOptions] = None) -> bool:
    """Whether ``root`` holds a complete canvas dataset (made with ``opts``, if given)."""
    meta_path = osp.join(root, 'meta.json')
    if not osp.isfile(meta_path):
        return False
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get('format') != FORMAT_VERSION:
        return False
    if opts is not None and meta.get('options') != asdict(opts):
        return False
    for split in SPLITS:
        if split not in meta.get('counts', {}):
            return False
        if not osp.isfile(osp.join(root, 'annotations', f'instances_{split}.json')):
            return False
        for sub in ('images', 'seg_maps'):
            folder = osp.join(root, sub, split)
            if not osp.isdir(folder) or len(os.listdir(folder)) != meta['counts'][split]:
                return False
    return True


def write_canvas_dataset(src: str, root: str, opts: CanvasOptions, log=print) -> Dict:
    """Compose and write the dataset (see the module docstring); returns ``meta.json``'s content.
    An existing dataset at ``root`` made with the same options is kept as it is."""
    import cv2
    opts.check()
    if canvas_dataset_ready(root, opts):
        with open(osp.join(root, 'meta.json')) as f:
            meta = json.load(f)
        log(f'[canvases] {root} already holds this dataset ('
            + ' / '.join(f'{meta["counts"][s]} {s}' for s in SPLITS) + ' canvases)')
        return meta
    # one independent stream per split, so a split does not depend on another's count
    streams = np.random.SeedSequence(opts.seed).spawn(len(SPLITS))
    counts, instance_counts, items = {}, {}, {}
    nums = dict(train=opts.train_num, val=opts.val_num, test=opts.test_num)
    for split, stream in zip(SPLITS, streams):
        num = nums[split]
        images, labels, sources = load_fashion_mnist(src, split, with_indices=True)
        rng = np.random.default_rng(stream)
        for sub in ('images', 'seg_maps'):
            folder = osp.join(root, sub, split)
            os.makedirs(folder, exist_ok=True)
            for old in os.listdir(folder):
                os.remove(osp.join(folder, old))
        names, all_instances = [], []
        for i in range(num):
            canvas, instances = compose_canvas(rng, images, labels, opts, sources)
            seg = np.zeros_like(canvas)
            for inst in instances:
                seg[inst['mask']] = inst['label'] + 1
            name = f'{i:06d}.png'
            cv2.imwrite(osp.join(root, 'images', split, name), canvas)
            cv2.imwrite(osp.join(root, 'seg_maps', split, name), seg)
            names.append(name)
            all_instances.append(instances)
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(_coco_split(split, names, all_instances, opts.size), f)
        counts[split] = num
        instance_counts[split] = sum(len(x) for x in all_instances)
        items[split] = len(images)
        log(f'[canvases] {split}: {num} canvases, {instance_counts[split]} instances (items '
            f'from the {len(images)} images of Fashion-MNIST\'s {split} split)')
    meta = dict(format=FORMAT_VERSION, options=asdict(opts), counts=counts,
                instances=instance_counts, items=items, classes=list(FASHION_MNIST_CLASSES),
                seg_classes=list(SEG_CLASSES), source=osp.abspath(src))
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    return meta
