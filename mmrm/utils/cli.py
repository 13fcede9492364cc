"""Command-line helpers shared by the tools."""
import argparse
from typing import Callable, Tuple

__all__ = ['shape_type']


def shape_type(layout: str) -> Callable[[str], Tuple[int, ...]]:
    """An argparse ``type`` reading ``'3x224x224'``-style shapes with the dims of ``layout``
    (e.g. ``'CxHxW'``, ``'NxCxHxW'``)."""
    ndim = len(layout.split('x'))

    def parse(text: str) -> Tuple[int, ...]:
        try:
            dims = tuple(int(v) for v in text.lower().split('x'))
        except ValueError:
            dims = ()
        if len(dims) != ndim or min(dims) <= 0:
            raise argparse.ArgumentTypeError(f'shape must be {layout} (positive ints), '
                                             f'got {text!r}')
        return dims

    return parse
