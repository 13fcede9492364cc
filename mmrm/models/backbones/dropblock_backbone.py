"""DropBlockBackbone: a backbone config with DropBlock placed as the DropBlock paper does."""
import copy
from typing import Optional, Sequence

import torch.nn as nn
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from mmpretrain.registry import MODELS

from ..utils.options import check_numbers
from .dropblock import DropBlock
from .pyramidnet import PyramidBasicBlock, PyramidBottleneck

#: residual block type -> the norm layers that close each convolution of its residual branch
BRANCH_NORMS = {
    Bottleneck: ('norm1', 'norm2', 'norm3'),
    BasicBlock: ('norm1', 'norm2'),
    # pre-activation: bn1 normalises the block input; bn2.. follow conv1..
    PyramidBottleneck: ('bn2', 'bn3', 'bn4'),
    PyramidBasicBlock: ('bn2', 'bn3'),
}


class _NormDropBlocks:
    """Forward hooks that apply a block's DropBlocks to the outputs of its branch norms.

    Kept as (block, norm name, DropBlock) and re-attached before each forward when a norm
    module was replaced after build (e.g. ``sync_bn`` converting BN to SyncBN, which copies a
    module's children but not its hooks), so the placement cannot silently disappear. The hook
    is the DropBlock's bound :meth:`~DropBlock.apply_to_output`, so a deep copy of the model
    carries hooks to its own layers, and a norm that has it is never hooked twice."""

    def __init__(self):
        self.entries = []  # (block, norm attribute name, DropBlock)

    def add(self, block: nn.Module, norm_name: str, dropblock: DropBlock) -> None:
        block.add_module(f'dropblock_{norm_name}', dropblock)
        self.entries.append((block, norm_name, dropblock))

    def attach(self, *args) -> None:
        for block, norm_name, dropblock in self.entries:
            norm = getattr(block, norm_name)
            if not any(getattr(hook, '__self__', None) is dropblock
                       for hook in norm._forward_hooks.values()):
                norm.register_forward_hook(dropblock.apply_to_output)


def add_dropblock(block: nn.Module, dropblock_cfg: dict, hooks: _NormDropBlocks) -> None:
    """DropBlock after every conv + norm of ``block``'s residual branch and on its shortcut,
    as the authors' ``bottleneck_block`` (TPU ResNet): each gets its own layer (own masks).

    A DropBlock on a norm output before the ReLU equals one after it (the mask and the positive
    rescale commute with ReLU). The identity shortcut of a block becomes its ``downsample``
    (these blocks compute ``identity = downsample(x)`` when one is set); a projection shortcut
    (a Sequential) gets the layer appended. DropBlock has no parameters or buffers, so no
    checkpoint key changes.
    """
    norms = BRANCH_NORMS.get(type(block))
    if norms is None:
        raise TypeError(f'DropBlockBackbone: no DropBlock placement is defined for block '
                        f'{type(block).__name__}; supported: '
                        f'{sorted(t.__name__ for t in BRANCH_NORMS)}')
    for name in norms:
        hooks.add(block, name, MODELS.build(dropblock_cfg))
    if block.downsample is None:
        block.downsample = MODELS.build(dropblock_cfg)
    elif isinstance(block.downsample, nn.Sequential):
        block.downsample.append(MODELS.build(dropblock_cfg))
    else:  # PyramidNet's parameter-free average pool
        block.downsample = nn.Sequential(block.downsample, MODELS.build(dropblock_cfg))


@MODELS.register_module()
def DropBlockBackbone(backbone_type: str,
                      dropblock: dict,
                      stages: Sequence[str],
                      stage_scales: Optional[Sequence[float]] = None,
                      **backbone_kwargs) -> nn.Module:
    r"""Build ``backbone_type`` with :class:`DropBlock` in the residual blocks of ``stages``.

    Returns the backbone itself (same class, same state-dict keys), so checkpoints load in and
    out of plain configs and downstream detectors. Placement follows the DropBlock paper
    (Sec. 4.1, best ImageNet setting: groups 3 and 4 of ResNet-50, convolution branches and
    skip connections) as its authors' TPU ResNet code does: in each block, after every
    conv + norm of the residual branch and on the shortcut. The stage ``k`` positions before the
    last listed one drops at ``drop_prob / 4**k`` (the code's ``(1 - keep_prob) / 4**(4 -
    group)``): ``stage_scales`` defaults to ``(..., 1/16, 1/4, 1)``.

    A derived config changes only the type and adds the DropBlock keys::

        model = dict(backbone=dict(
            type='DropBlockBackbone', backbone_type='ResNet',  # the base's ResNet kwargs stay
            dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=7),
            stages=('layer3', 'layer4')))

    Supported blocks: mmpretrain ``ResNet`` / ``ResNet_CIFAR`` and mmrm ``PyramidNet``.

    Args:
        backbone_type (str): registered backbone type, e.g. ``'ResNet'``.
        dropblock (dict): :class:`DropBlock` config (its ``drop_prob`` is the last stage's).
        stages (list[str]): names of the backbone's stage modules, e.g. ``('layer3', 'layer4')``.
        stage_scales (list[float], optional): drop-rate factor per listed stage, in (0, 1].
        **backbone_kwargs: the backbone's own arguments.
    """
    if isinstance(stages, str) or not stages:
        raise ValueError('DropBlockBackbone: stages must be a non-empty list of stage names, '
                         f"e.g. ('layer3', 'layer4'), got {stages!r}")
    if stage_scales is None:
        stage_scales = [0.25**(len(stages) - 1 - i) for i in range(len(stages))]
    check_numbers('DropBlockBackbone', 'stage_scales', stage_scales, 0, 1, low_open=True,
                  length=len(stages), hint=f'one drop-rate factor per stage of {list(stages)}')
    dropblock = dict(dropblock)
    dropblock.setdefault('type', 'DropBlock')
    MODELS.build(copy.deepcopy(dropblock))  # a bad DropBlock setting fails here, named
    model = MODELS.build(dict(type=backbone_type, **backbone_kwargs))
    children = dict(model.named_children())
    hooks = _NormDropBlocks()
    for stage, scale in zip(stages, stage_scales):
        if stage not in children:
            raise ValueError(f'DropBlockBackbone: {backbone_type} has no stage {stage!r}; its '
                             f'modules are {list(children)}')
        cfg = dict(dropblock, drop_prob=dropblock.get('drop_prob', 0.) * scale)
        for block in children[stage].children():
            add_dropblock(block, cfg, hooks)
    hooks.attach()
    model.register_forward_pre_hook(hooks.attach)
    model._dropblock_hooks = hooks  # keeps the placement reachable (and inspectable)
    return model
