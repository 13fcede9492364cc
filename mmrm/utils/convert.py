"""Turn RecursiveMix training checkpoints into deployable ones."""
from collections import OrderedDict
from typing import List, Tuple

import torch

# Weights that only RM training needs: the RoI consistency head H' (paper Eq. 4).
RM_ONLY_PREFIXES = ('roi_head.', )


def convert_rm_checkpoint(checkpoint: dict, backbone_only: bool = False,
                          strip_prefix: bool = False) -> Tuple[dict, List[str]]:
    """Drop the RM-only weights (and the training state) from an RMClassifier checkpoint.

    Args:
        checkpoint: a checkpoint as saved by MMEngine (``state_dict`` and ``meta``, maybe
            ``optimizer``, ``message_hub``, ``param_schedulers``), or a bare state dict.
        backbone_only: keep only ``backbone.*`` (for MMDetection/MMSegmentation, which load it
            with ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).
        strip_prefix: with ``backbone_only``, also remove the ``backbone.`` prefix, for loaders
            that take the backbone's own keys.

    Returns:
        ``(new_checkpoint, dropped_keys)``: a checkpoint with ``state_dict`` and ``meta`` only,
        and the sorted list of state-dict keys that were removed.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if 'state_dict' not in checkpoint and not all(hasattr(v, 'shape') for v in state.values()):
        raise ValueError('convert_rm_checkpoint: expected an MMEngine checkpoint with a '
                         "'state_dict' or a bare state dict of tensors")
    kept, dropped = OrderedDict(), []
    for key, value in state.items():
        if key.startswith(RM_ONLY_PREFIXES) or (backbone_only and not key.startswith('backbone.')):
            dropped.append(key)
            continue
        if backbone_only and strip_prefix:
            key = key[len('backbone.'):]
        kept[key] = value
    if backbone_only and not kept:
        raise ValueError('convert_rm_checkpoint: no backbone.* weights in the checkpoint')
    meta = dict(checkpoint.get('meta', {}) or {})
    meta['mmrm_converted'] = dict(backbone_only=backbone_only, strip_prefix=strip_prefix,
                                  dropped=len(dropped))
    return dict(meta=meta, state_dict=kept), sorted(dropped)


def add_swin_stage_norms(state: dict, prefix: str = 'backbone.') -> List[str]:
    """Give a Swin backbone checkpoint a LayerNorm for every stage output, in place.

    MMPretrain's classification Swin normalises only the stage it classifies from
    (``norm3``); MMDetection's and MMSegmentation's Swin (same key names otherwise) normalise all
    four stage outputs for the FPN / UperNet head (``norm0`` .. ``norm3``). The missing norms
    get LayerNorm's own initial values (weight 1, bias 0): what the downstream model starts them
    at without a checkpoint entry, written out so that a strict key check covers every other
    weight. Returns the added keys; ``ValueError`` if ``state`` is not a Swin backbone.
    """
    stage = 0
    added = []
    if f'{prefix}stages.0.blocks.0.norm1.weight' not in state:
        raise ValueError('add_swin_stage_norms: no Swin backbone in the checkpoint (expected '
                         f'{prefix}stages.0.blocks.0.norm1.weight)')
    while f'{prefix}stages.{stage}.blocks.0.norm1.weight' in state:
        width = state[f'{prefix}stages.{stage}.blocks.0.norm1.weight'].numel()
        if f'{prefix}norm{stage}.weight' not in state:
            state[f'{prefix}norm{stage}.weight'] = torch.ones(width)
            state[f'{prefix}norm{stage}.bias'] = torch.zeros(width)
            added += [f'{prefix}norm{stage}.weight', f'{prefix}norm{stage}.bias']
        stage += 1
    return added
