"""Turn RecursiveMix training checkpoints into deployable ones."""
from collections import OrderedDict
from typing import List, Tuple

import torch

# Weights that only RM training needs: the RoI consistency head H' (paper Eq. 4).
RM_ONLY_PREFIXES = ('roi_head.', )


#: which weights of a checkpoint saved with MMEngine's ``EMAHook`` a converter takes
WEIGHTS = ('ema', 'raw')


def holds_weights(checkpoint) -> bool:
    """Whether ``checkpoint`` is an MMEngine checkpoint (a dict with ``state_dict``) or a
    bare, non-empty state dict of tensors: something a converter can convert."""
    return isinstance(checkpoint, dict) and ('state_dict' in checkpoint or (
        bool(checkpoint) and all(hasattr(v, 'shape') for v in checkpoint.values())))


def read_checkpoint(path: str) -> dict:
    """The checkpoint at ``path`` for a converter (on the CPU), or a
    :class:`~mmrm.engine.CheckpointError` naming the file and what is wrong: missing, empty,
    truncated, not a checkpoint, refused by the weights-only unpickler, or holding no weights."""
    from mmrm.engine.checkpoint_files import ForeignCheckpointError, load_checkpoint_file
    checkpoint = load_checkpoint_file(path, map_location='cpu')
    if not holds_weights(checkpoint):
        keys = ', '.join(map(repr, list(checkpoint)[:5])) or 'none'
        raise ForeignCheckpointError(
            f'checkpoint {path}: holds no model weights (a dict with keys {keys}, where a '
            "checkpoint has a 'state_dict' or is a state dict of tensors)")
    return checkpoint


def checkpoint_weights(checkpoint: dict, weights: str = 'ema') -> Tuple[dict, str]:
    """The state dict to convert and a sentence saying which weights it holds.

    ``EMAHook`` saves the averaged (EMA) weights as ``state_dict``, where every loader and
    MMPretrain's own deploy tools look, and the trained weights under ``ema_state_dict`` with a
    ``module.`` prefix (next to the average's ``steps``). ``weights='ema'`` (default) takes
    ``state_dict`` — the EMA weights when the checkpoint has them, which is what the EMA run
    validated with; ``'raw'`` takes the trained weights of an EMA checkpoint (of any other
    checkpoint, its only weights)."""
    if weights not in WEIGHTS:
        raise ValueError(f'weights must be one of {WEIGHTS}, got {weights!r}')
    state = checkpoint.get('state_dict', checkpoint)
    ema = checkpoint.get('ema_state_dict')
    if ema is None:
        return state, 'the trained weights (the checkpoint has no EMA)'
    if weights == 'ema':
        return state, ('the EMA-averaged weights (state_dict of an EMAHook checkpoint; '
                       "--weights raw takes the trained ones)")
    raw = {k[len('module.'):]: v for k, v in ema.items() if k.startswith('module.')}
    if set(raw) != set(state):
        raise ValueError('checkpoint_weights: ema_state_dict does not hold the trained weights '
                         'of every state_dict key (not an EMAHook checkpoint?)')
    return type(state)((k, raw[k]) for k in state), (
        'the trained (not averaged) weights of an EMAHook checkpoint (its ema_state_dict)')


def convert_rm_checkpoint(checkpoint: dict, backbone_only: bool = False,
                          strip_prefix: bool = False,
                          weights: str = 'ema') -> Tuple[dict, List[str]]:
    """Drop the RM-only weights (and the training state) from an RMClassifier checkpoint.

    Args:
        checkpoint: a checkpoint as saved by MMEngine (``state_dict`` and ``meta``, maybe
            ``optimizer``, ``message_hub``, ``param_schedulers``), or a bare state dict.
        backbone_only: keep only ``backbone.*`` (for MMDetection/MMSegmentation, which load it
            with ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).
        strip_prefix: with ``backbone_only``, also remove the ``backbone.`` prefix, for loaders
            that take the backbone's own keys.
        weights: of a checkpoint saved with ``EMAHook``, ``'ema'`` (default) the averaged
            weights or ``'raw'`` the trained ones (:func:`checkpoint_weights`); the averaged
            RoI head is dropped like the trained one.

    Returns:
        ``(new_checkpoint, dropped_keys)``: a checkpoint with ``state_dict`` and ``meta`` only,
        and the sorted list of state-dict keys that were removed.
    """
    if not holds_weights(checkpoint):
        raise ValueError('convert_rm_checkpoint: expected an MMEngine checkpoint with a '
                         "'state_dict' or a bare state dict of tensors")
    state, took = checkpoint_weights(checkpoint, weights)
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
                                  dropped=len(dropped), weights=took)
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
