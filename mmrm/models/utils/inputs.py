"""Checks of a batch's images against the model, before any of it runs.

An empty batch otherwise surfaces as a missing-argument error far from its cause (RM's
classifier saw no mixed targets), and images with another channel count than the model's
first convolution (three-channel images into a Fashion-MNIST model) as torch's convolution
error. Only shapes are read: no data, no device synchronisation.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn


def input_channels(backbone: nn.Module) -> Tuple[Optional[int], Optional[str]]:
    """``(in_channels, name)`` of the backbone's first convolution (the stem, or a ViT's patch
    embedding), or ``(None, None)`` where it has none."""
    for name, module in backbone.named_modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels, name
    return None, None


def batch_size(inputs) -> int:
    """Images in a batch: a stacked ``(N, C, H, W)`` tensor or a list of ``(C, H, W)`` ones."""
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() else 0
    return len(inputs)


def check_batch(owner: str, inputs, samples: Optional[Sequence]) -> None:
    """The batch as it leaves the loader holds at least one image, and as many images as
    ``samples`` (when given), else a ValueError saying so."""
    n = batch_size(inputs)
    if n == 0 or (samples is not None and len(samples) == 0):
        got = 0 if samples is None else len(samples)
        raise ValueError(
            f'{owner}: the batch is empty ({n} images, {got} data_samples); a step needs at '
            'least one sample: check that the dataset is not empty and the dataloader\'s '
            'batch_size >= 1')
    if samples is not None and len(samples) != n:
        raise ValueError(f'{owner}: the batch has {n} images but {len(samples)} data_samples; '
                         'each image needs its sample')


def check_channels(owner: str, inputs: torch.Tensor, in_channels: Optional[int],
                   conv_name: Optional[str] = None) -> None:
    """The ``(N, C, H, W)`` batch the model receives (after the data preprocessor, whose
    normalisation may broadcast one channel to three) has the ``in_channels`` of the model's
    first convolution (when known), else a ValueError naming both counts."""
    if in_channels is None or not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        return
    c = int(inputs.shape[1])
    if c != in_channels:
        raise ValueError(
            f'{owner}: the images have {c} channels but the model takes {in_channels} (its '
            f'first convolution, backbone.{conv_name}, has in_channels={in_channels}); load '
            f'the images with {in_channels} channels (e.g. LoadImageFromFile\'s color_type) '
            f'or build the backbone with in_channels={c}')
