"""Data for mmrm: the transforms the paper's comparators need and MMPretrain does not have
(:mod:`.transforms`, registered by ``import mmrm``), Fashion-MNIST's three disjoint splits
(:mod:`.fashion_mnist_splits`: a validation split carved from the training images), and the
offline detection / segmentation canvases composed from Fashion-MNIST items for the downstream
chain (:mod:`.fashion_mnist_canvases`, numpy only)."""
from .fashion_mnist_canvases import (FASHION_MNIST_CLASSES, SEG_CLASSES, SEG_PALETTE,
                                     CanvasOptions, FashionMNISTMissing, canvas_dataset_ready,
                                     compose_canvas, load_fashion_mnist, write_canvas_dataset)
from .fashion_mnist_splits import FashionMNISTSplit, split_indices
from .transforms import ClippedCutout

__all__ = [
    'ClippedCutout', 'FASHION_MNIST_CLASSES', 'SEG_CLASSES', 'SEG_PALETTE', 'CanvasOptions',
    'FashionMNISTMissing', 'canvas_dataset_ready', 'compose_canvas', 'load_fashion_mnist',
    'write_canvas_dataset', 'FashionMNISTSplit', 'split_indices'
]
