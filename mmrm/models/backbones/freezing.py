"""Frozen stages and ``norm_eval`` for mmrm's backbones, as mmpretrain's ResNet does them."""
from typing import Iterable

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze(modules: Iterable[nn.Module]) -> None:
    """Put ``modules`` in eval mode and stop their parameters' gradients."""
    for m in modules:
        m.eval()
        for param in m.parameters():
            param.requires_grad = False


class FreezeStagesMixin:
    """``train()`` that re-freezes the frozen stages (``self._freeze_stages()``) and, with
    ``self.norm_eval``, keeps every BN layer in eval mode while training."""

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
