"""Offline data for the downstream chain: detection / segmentation canvases composed from
Fashion-MNIST items (:mod:`.fashion_mnist_canvases`). Not imported by ``import mmrm``."""
from .fashion_mnist_canvases import (FASHION_MNIST_CLASSES, SEG_CLASSES, SEG_PALETTE,
                                     CanvasOptions, FashionMNISTMissing, canvas_dataset_ready,
                                     compose_canvas, load_fashion_mnist, write_canvas_dataset)

__all__ = [
    'FASHION_MNIST_CLASSES', 'SEG_CLASSES', 'SEG_PALETTE', 'CanvasOptions', 'FashionMNISTMissing',
    'canvas_dataset_ready', 'compose_canvas', 'load_fashion_mnist', 'write_canvas_dataset'
]
