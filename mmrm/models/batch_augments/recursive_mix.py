"""RecursiveMix batch augmentation (Yang et al., "RecursiveMix: Mixed Learning with History")."""
import functools
import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.registry import BATCH_AUGMENTS

INTERPOLATIONS = ('nearest', 'bilinear')
RESET_POLICIES = ('epoch', 'never')


@functools.lru_cache(maxsize=2048)
def _nearest_index(out_size: int, in_size: int, device: torch.device) -> torch.Tensor:
    # Cached: a box side takes at most ``in_size`` values, so after a few hundred steps every
    # index exists and the op launches no index kernels (they dominate it on a GPU). Read-only.
    # torch's nearest rule (src = floor(dst * in / out), scale in float32), so the result is
    # bit-identical to F.interpolate(mode='nearest'). The Python scalar is cast to float32 by
    # the multiplication itself; a device tensor made from it would be a blocking copy.
    with torch.inference_mode(False):  # a cached inference tensor could not join autograd
        idx = torch.arange(out_size, dtype=torch.float32, device=device) * (in_size / out_size)
        return idx.floor_().long().clamp_max_(in_size - 1)


def nearest_resize(src: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """``F.interpolate(src, (out_h, out_w), mode='nearest')`` as one gather.

    Shrinking to a small box is what RM does every step, and torch's nearest kernel is slow at
    it on CPU (about 10x a plain copy of the output); one ``index_select`` over the flattened
    pixels reads only the output's pixels. ``src`` is (N, C, H, W).
    """
    n, c, h, w = src.shape
    rows = _nearest_index(out_h, h, src.device)
    cols = _nearest_index(out_w, w, src.device)
    flat = (rows[:, None] * w + cols[None, :]).view(-1)
    return src.reshape(n * c, h * w).index_select(1, flat).view(n, c, out_h, out_w)


@BATCH_AUGMENTS.register_module()
class RecursiveMixBatchAugment:
    r"""RecursiveMix: resize-fill the previous mixed batch into a box of the current one.

    Paper Eq. (1)-(2), per call t (one box and one :math:`\lambda` per batch):

    .. math::
        \lambda_{raw} \sim U[0, \alpha],\quad r_w = \lfloor W\sqrt{\lambda_{raw}} \rfloor,\quad
        r_h = \lfloor H\sqrt{\lambda_{raw}} \rfloor,\quad (c_x, c_y) \sim U\{0..W-1\}\times U\{0..H-1\}

        B = \mathrm{clip}(c_x \mp r_w/2, c_y \mp r_h/2),\quad
        \lambda = |B| / (HW)  \quad\text{(share of the HISTORICAL image)}

        \tilde x^t = M_B \odot \mathrm{ResizeFill}(x^h, B) + (1 - M_B) \odot x^t,\quad
        \tilde y^t = \lambda y^h + (1 - \lambda) y^t,\quad x^h \leftarrow \tilde x^t,\ y^h \leftarrow \tilde y^t

    Sample ``i`` of the batch pairs with sample ``i`` of the history (the loader already
    shuffles). The whole history batch ``(N, C, H, W)`` is resized to the box ``(r_h, r_w)``
    and written into every image: one gather (nearest) or interpolate (bilinear) and one slice
    assignment per batch, no
    per-sample loop, and the box is sampled on the host, so nothing waits on the device.

    No paste happens (``lam = 0``, the output equals the input) when there is no history yet,
    when the batch is larger than the history (a short last batch came before it), when the
    history has another channel count or spatial size (a resolution change), or when the
    sampled box is empty. The history is replaced by the new output in every case.

    After each call, :attr:`last_box` holds the box as ``(x1, y1, x2, y2)`` input-pixel ints
    (x along the width, y along the height; half-open) and :attr:`last_lam` the historical share.
    The history is plain attributes, never parameters or buffers, so it never enters a
    checkpoint; after a resume the first step pastes nothing.

    Args:
        alpha (float): upper bound of the uniform ratio distribution, in (0, 1]. Defaults to 0.5.
        interpolation (str): 'nearest' (paper default) or 'bilinear' (align_corners=True, as the
            reference code) for ResizeFill.
        resize (bool): True resizes the whole history into the box (ResizeFill). False cuts the
            history at the same box instead, as CutMix does (the paper's "no RS" ablation).
        use_history (bool): False mixes with a shuffled copy of the current batch instead of the
            history (the "no HIS" ablation: CutMix with the RM box sampler and resize).
        reset_history (str): 'epoch' drops the history when a new training epoch starts (as the
            reference code, which re-initialises it per epoch; read from MMEngine's message hub,
            so no hook is needed); 'never' keeps it across epochs. Defaults to 'epoch'.

    The augment works in place on ``inputs`` (like mmpretrain's CutMix) and returns soft
    scores. Use it in a plain ``ImageClassifier`` through ``train_cfg=dict(augments=...)``
    for the history-without-consistency ablation, or in ``RMClassifier`` for full RM.
    """

    def __init__(self,
                 alpha: float = 0.5,
                 interpolation: str = 'nearest',
                 resize: bool = True,
                 use_history: bool = True,
                 reset_history: str = 'epoch'):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) \
                or not 0 < alpha <= 1:
            raise ValueError(f'RecursiveMixBatchAugment: alpha must be a number in (0, 1] '
                             f'(the largest historical area share), got {alpha!r}')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'RecursiveMixBatchAugment: interpolation must be one of '
                             f'{INTERPOLATIONS}, got {interpolation!r}')
        if reset_history not in RESET_POLICIES:
            raise ValueError(f'RecursiveMixBatchAugment: reset_history must be one of '
                             f'{RESET_POLICIES}, got {reset_history!r}')
        for name, value in (('resize', resize), ('use_history', use_history)):
            if not isinstance(value, bool):
                raise ValueError(f'RecursiveMixBatchAugment: {name} must be True or False, '
                                 f'got {value!r}')
        self.alpha = float(alpha)
        self.interpolation = interpolation
        self.resize = resize
        self.use_history = use_history
        self.reset_history = reset_history
        self.reset()

    def reset(self) -> None:
        """Forget the history; the next call pastes nothing."""
        self.history_inputs: Optional[torch.Tensor] = None
        self.history_scores: Optional[torch.Tensor] = None
        self._history_epoch: Optional[int] = None
        self.last_box: Tuple[int, int, int, int] = (0, 0, 0, 0)
        self.last_lam: float = 0.

    def sample_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Sample the box of Eq. (2) with clipping, as ``(x1, y1, x2, y2)`` ints."""
        ratio = math.sqrt(np.random.uniform(0., self.alpha))
        cut_w, cut_h = int(width * ratio), int(height * ratio)
        cx, cy = np.random.randint(width), np.random.randint(height)
        x1 = min(max(cx - cut_w // 2, 0), width)
        x2 = min(max(cx + cut_w // 2, 0), width)
        y1 = min(max(cy - cut_h // 2, 0), height)
        y2 = min(max(cy + cut_h // 2, 0), height)
        return x1, y1, x2, y2

    def _epoch_changed(self) -> bool:
        if self.reset_history != 'epoch':
            return False
        epoch = MessageHub.get_current_instance().get_info('epoch')
        changed = self._history_epoch is not None and epoch != self._history_epoch
        self._history_epoch = epoch
        return changed

    def _source(self, inputs: torch.Tensor, scores: torch.Tensor):
        """What gets pasted: the first N history samples, or a shuffled current batch."""
        n = inputs.size(0)
        if not self.use_history:
            perm = torch.randperm(n, device=inputs.device)
            return inputs[perm], scores[perm]
        hist = self.history_inputs
        if (hist is None or hist.size(0) < n or hist.shape[1:] != inputs.shape[1:]
                or self.history_scores.shape[1:] != scores.shape[1:]):
            return None, None
        return hist[:n], self.history_scores[:n]

    def __call__(self, inputs: torch.Tensor,
                 batch_score: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix ``inputs`` (N, C, H, W) with the history; ``batch_score`` is (N, num_classes)."""
        scores = batch_score.float()
        if self._epoch_changed():
            self.history_inputs = self.history_scores = None
        src_inputs, src_scores = self._source(inputs, scores)
        height, width = inputs.shape[-2:]
        x1, y1, x2, y2 = self.sample_box(height, width)
        lam = (x2 - x1) * (y2 - y1) / float(height * width)
        if src_inputs is None or lam == 0:
            x1 = y1 = x2 = y2 = 0
            lam = 0.
        else:
            if self.resize and self.interpolation == 'nearest':
                patch = nearest_resize(src_inputs, y2 - y1, x2 - x1)
            elif self.resize:
                patch = F.interpolate(src_inputs, size=(y2 - y1, x2 - x1), mode='bilinear',
                                      align_corners=True)
            else:
                patch = src_inputs[..., y1:y2, x1:x2]
            # `patch` is a new tensor (or a view of another tensor), so writing in place is safe.
            inputs[..., y1:y2, x1:x2] = patch.to(inputs.dtype)
            scores = lam * src_scores + (1. - lam) * scores
        if self.use_history:
            self.history_inputs = inputs.detach()
            self.history_scores = scores.detach()
        self.last_box = (x1, y1, x2, y2)
        self.last_lam = lam
        return inputs, scores

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(alpha={self.alpha}, interpolation='
                f"'{self.interpolation}', resize={self.resize}, use_history={self.use_history}, "
                f"reset_history='{self.reset_history}')")
