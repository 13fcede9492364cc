"""RecursiveMix batch augmentation (Yang et al., "RecursiveMix: Mixed Learning with History")."""
import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.registry import BATCH_AUGMENTS

from ..utils.options import check_number
from .resize_fill import resize_fill_nearest_

INTERPOLATIONS = ('nearest', 'bilinear')
RESET_POLICIES = ('epoch', 'never')
#: the CPU verdicts as 0-d bool tensors, made once (read-only: nothing writes into a verdict)
HOST_FALSE, HOST_TRUE = torch.tensor(False), torch.tensor(True)


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
    and written straight into the box of every image (nearest: :mod:`.resize_fill`, bit-identical
    to ``F.interpolate``), with no per-sample loop; the box is sampled on the host, so nothing
    waits on the device.

    No paste happens (``lam = 0``, the output equals the input) when there is no history yet,
    when the batch is larger than the history (a short last batch came before it), when the
    history has another channel count or spatial size (a resolution change), or when the
    sampled box is empty. The history is replaced by the new output in every case but one: an
    output that is not finite (a corrupt image, an overflow) never becomes the history, which
    then stays the last finite batch (:meth:`_commit`, decided on the device at the next call;
    in :class:`RMClassifier` the verdict is the step's loss, :meth:`keep_history_if`).

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
        alpha = check_number('RecursiveMixBatchAugment', 'alpha', alpha, 0, 1, low_open=True,
                             hint='the largest historical area share')
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
        self.alpha = alpha
        self.interpolation = interpolation
        self.resize = resize
        self.use_history = use_history
        self.reset_history = reset_history
        #: whether a call judges its own output's finiteness (one reduction of the batch).
        #: ``RMDataPreprocessor`` turns it off: its classifier judges the step's loss instead,
        #: which is not finite whenever the mixed batch or the logits are not.
        self.check_finite = True
        self.reset()

    def reset(self) -> None:
        """Forget the history; the next call pastes nothing."""
        self._hist_x: Optional[torch.Tensor] = None
        self._hist_y: Optional[torch.Tensor] = None
        # the last output and whether it is finite (a 0-d device bool), until the next call
        # makes it the history, or not (:meth:`_commit`)
        self._pending: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None
        self._history_epoch: Optional[int] = None
        self.last_box: Tuple[int, int, int, int] = (0, 0, 0, 0)
        self.last_lam: float = 0.
        #: 0-d device bool: the last output was finite (None before a call / without history)
        self.last_finite: Optional[torch.Tensor] = None

    @property
    def history_inputs(self) -> Optional[torch.Tensor]:
        """:math:`x^h`, the last finite mixed batch ``(N, C, H, W)`` (None: no history)."""
        self._commit()
        return self._hist_x

    @history_inputs.setter
    def history_inputs(self, value: Optional[torch.Tensor]) -> None:
        self._commit()
        self._hist_x = value

    @property
    def history_scores(self) -> Optional[torch.Tensor]:
        """:math:`y^h`, the mixed scores ``(N, K)`` of :attr:`history_inputs`."""
        self._commit()
        return self._hist_y

    @history_scores.setter
    def history_scores(self, value: Optional[torch.Tensor]) -> None:
        self._commit()
        self._hist_y = value

    def _commit(self) -> None:
        """``x_h <- x_mix, y_h <- y_mix`` for the last output, unless it was not finite: then
        the history stays what it was (the last finite batch), so one corrupt batch is never
        pasted into the next ones. Decided on the device (``torch.where`` on a 0-d flag): no
        host sync. Where no finite history of this shape exists yet, a rejected batch leaves a
        blank one: zeros (the mean image after normalisation) with uniform scores."""
        if self._pending is None:
            return
        x, y, ok = self._pending
        self._pending = None
        # nobody judged it (a bare call without the owner's verdict), or this op judged it
        # finite on the host: keep the batch itself
        if ok is None or ok is HOST_TRUE:
            self._hist_x, self._hist_y = x, y
            return
        prev_x, prev_y = self._hist_x, self._hist_y
        if x.is_cpu and ok.is_cpu:
            # on the host the verdict costs no sync: keep the batch itself instead of copying
            # it through torch.where (a whole-batch read and write, half the op at 224 px, #35)
            if not bool(ok):
                if prev_x is None or prev_x.shape != x.shape or prev_y.shape != y.shape:
                    prev_x, prev_y = x.new_zeros(x.shape), y.new_full(y.shape, 1. / y.size(1))
                x, y = prev_x, prev_y
            self._hist_x, self._hist_y = x, y
            return
        if prev_x is None or prev_x.shape != x.shape or prev_y.shape != y.shape:
            prev_x, prev_y = x.new_zeros(()), y.new_full((), 1. / y.size(1))
        self._hist_x = torch.where(ok, x, prev_x)
        self._hist_y = torch.where(ok, y, prev_y)

    def keep_history_if(self, ok: Optional[torch.Tensor]) -> None:
        """Make the last output the history only if also ``ok`` (a 0-d bool tensor: e.g.
        whether the classifier's logits on it were finite). No host sync."""
        if ok is not None and self._pending is not None:
            x, y, finite = self._pending
            self._pending = (x, y, ok if finite is None else finite & ok)

    def sample_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Sample the box of Eq. (2) with clipping, as ``(x1, y1, x2, y2)`` ints."""
        # np.random.uniform(0., alpha) is 0. + alpha * U, the same double as alpha * U drawn
        # from the same stream; random_sample skips uniform's argument checks (~5 us, #35)
        ratio = math.sqrt(float(self.alpha) * np.random.random_sample())
        cut_w, cut_h = int(width * ratio), int(height * ratio)
        cx, cy = np.random.randint(width), np.random.randint(height)
        # 0 <= cx < width: cx - cut_w // 2 < width and cx + cut_w // 2 >= 0, so one clip each
        return (max(cx - cut_w // 2, 0), max(cy - cut_h // 2, 0),
                min(cx + cut_w // 2, width), min(cy + cut_h // 2, height))

    def _epoch_changed(self) -> bool:
        if self.reset_history != 'epoch':
            return False
        epoch = MessageHub.get_current_instance().get_info('epoch')
        changed = self._history_epoch is not None and epoch != self._history_epoch
        self._history_epoch = epoch
        return changed

    def _source(self, inputs: torch.Tensor, scores: torch.Tensor):
        """What gets pasted: the first N history samples, or a shuffled current batch."""
        if not self.use_history:
            perm = torch.randperm(inputs.size(0), device=inputs.device)
            return inputs[perm], scores[perm]
        self._commit()
        hist, hist_scores = self._hist_x, self._hist_y
        if hist is None:
            return None, None
        if hist.shape == inputs.shape and hist_scores.shape == scores.shape:
            return hist, hist_scores  # the usual case: one comparison each, no slicing
        n = inputs.size(0)
        if (hist.size(0) < n or hist.shape[1:] != inputs.shape[1:]
                or hist_scores.shape[1:] != scores.shape[1:]):
            return None, None
        return hist[:n], hist_scores[:n]

    # Eager under torch.compile on purpose: traced, every drawn box would be a new graph
    # (dynamo specialises on the drawn numbers) and the history a guard; the op is cheap.
    @torch.compiler.disable(reason='RM box draw and paste: host-side, data-dependent, cheap')
    def __call__(self, inputs: torch.Tensor,
                 batch_score: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix ``inputs`` (N, C, H, W) with the history; ``batch_score`` is (N, num_classes)."""
        shape = inputs.shape
        if len(shape) != 4 or batch_score.ndim != 2 or batch_score.shape[0] != shape[0]:
            raise ValueError('RecursiveMixBatchAugment mixes an (N, C, H, W) image batch with '
                             f'(N, num_classes) scores; got inputs {tuple(inputs.shape)} and '
                             f'scores {tuple(batch_score.shape)}')
        scores = batch_score.float()
        if self._epoch_changed():
            self._hist_x = self._hist_y = self._pending = None
        src_inputs, src_scores = self._source(inputs, scores)
        n, c, height, width = shape
        x1, y1, x2, y2 = self.sample_box(height, width)
        lam = (x2 - x1) * (y2 - y1) / float(height * width)
        if src_inputs is None or lam == 0:
            x1 = y1 = x2 = y2 = 0
            lam = 0.
        else:
            # inputs[:, :, y1:y2, x1:x2] as one view call (the 4-d slice costs ~3x as much)
            stride = inputs.stride()
            box = inputs.as_strided((n, c, y2 - y1, x2 - x1), stride,
                                    inputs.storage_offset() + y1 * stride[2] + x1 * stride[3])
            if src_inputs.untyped_storage().data_ptr() == inputs.untyped_storage().data_ptr():
                src_inputs = src_inputs.clone()  # never read what this call overwrites
            if self.resize and self.interpolation == 'nearest':
                resize_fill_nearest_(box, src_inputs)
            elif self.resize:
                box.copy_(F.interpolate(src_inputs, size=(y2 - y1, x2 - x1), mode='bilinear',
                                        align_corners=True))
            else:
                box.copy_(src_inputs[..., y1:y2, x1:x2])
            # lam * y_h + (1 - lam) * y (Eq. 1) in one kernel
            scores = torch.lerp(scores, src_scores, lam)
        if self.use_history:
            # the sum of a batch is finite exactly when its pixels are (barring an overflow of
            # finite values, rejected too): one reduction. The scores were checked on the host.
            detached = inputs.detach()
            if not self.check_finite:
                self.last_finite = None
            elif detached.is_cpu:  # read on the host: no sync, no 0-d ops
                finite = math.isfinite(detached.sum().item())
                self.last_finite = HOST_TRUE if finite else HOST_FALSE
            else:  # isfinite(s) as d == d, d = s - s (0 if s is finite, else NaN): 2 ops, not 4
                diff = detached.sum()
                diff = diff.sub_(diff)
                self.last_finite = diff.eq(diff)
            self._pending = (detached, scores.detach(), self.last_finite)
        self.last_box = (x1, y1, x2, y2)
        self.last_lam = lam
        return inputs, scores

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(alpha={self.alpha}, interpolation='
                f"'{self.interpolation}', resize={self.resize}, use_history={self.use_history}, "
                f"reset_history='{self.reset_history}')")
