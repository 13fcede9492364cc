"""Turn RecursiveMix training checkpoints into deployable ones."""
from collections import OrderedDict
from typing import List, Tuple

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
