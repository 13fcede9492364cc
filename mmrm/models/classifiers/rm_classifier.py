"""RMClassifier: an ImageClassifier trained with RecursiveMix's dual head."""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmrm.structures import RMMix
from ..data_preprocessors import RMDataPreprocessor
from ..heads import RoIConsistencyHead
from ..utils import build_feature_tap, check_num_classes, input_channels
from .rm_checks import check_head_loss, check_roi_head


@MODELS.register_module()
class RMClassifier(ImageClassifier):
    r"""Image classifier with RecursiveMix's RoI consistency head (paper Eq. 3-5), for any
    MMPretrain architecture with a spatial feature map before its classifier.

    Training step on a mixed batch :math:`\tilde x^t` (N, 3, H, W) with the
    :class:`~mmrm.structures.RMMix` of :class:`RMDataPreprocessor` (mixed scores, box B, lam):

    - main path (Eq. 3), exactly the original model's: ``logits = head(neck(backbone(x)))``
      (N, K) and ``loss_cls = head.loss_module(logits, y_mix)``;
    - RoI path (Eq. 4): :math:`\tilde p^t_{roi} = H'(\mathrm{RoIAlign}_{1\times1}(F, B))`, where
      ``F`` is the map the main path pools globally, read from the forward pass by a
      :class:`~mmrm.models.utils.FeatureTap` chosen from the model's structure: the input of
      a global pooling neck or layer (CNNs, Swin, HRNet's fused map, ...), the last stage of a
      backbone that averages it itself (ConvNeXt, EdgeNeXt, TinyViT; the pooled box then goes
      through the same final norm), or the patch tokens of a ViT-style backbone on their grid
      (class / distillation tokens excluded);
    - ``loss_rm = omega * lam * KL(softmax(p^h) || softmax(p_roi))`` (Eq. 5), where
      :math:`p^h` is the main logits of the previous step, kept detached on this module
      (never a parameter or buffer, so never in a checkpoint).

    The RoI term is always computed (weighted 0 when nothing was pasted), so every parameter
    gets a gradient at every step and DDP needs no ``find_unused_parameters``. ``predict``,
    ``val_step`` and ``test_step`` are the plain ImageClassifier path and never read or change
    the history. Under ``torch.compile`` (MMEngine's ``compile=True``) the box and lam reach
    :meth:`loss` as tensors built on the host (``RMMix.roi``, ``RMMix.lam_tensor``), so the
    forward, the RoI head and the loss compile once for every box. For deployment drop
    ``roi_head.*`` (``tools/model_converters/rm2cls.py``): what is left is the original model's
    state dict.

    Args:
        backbone, neck, head, pretrained, init_cfg: as :class:`ImageClassifier`; the head must
            compute its loss the ``ClsHead`` way (``loss_module`` on the logits).
        roi_head (dict): :class:`RoIConsistencyHead` config; ``num_classes`` defaults to the
            main classifier's, ``in_channels`` to the width of the pooled map where the model
            tells it (the head's ``in_channels`` when the pooled map reaches the head unchanged).
        train_cfg (dict): batch augments as in mmpretrain; defaults to
            ``dict(augments=dict(type='RecursiveMixBatchAugment'))``.
        data_preprocessor (dict): defaults to type ``RMDataPreprocessor`` (required).
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 roi_head: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if head is None:
            raise ValueError('RMClassifier: head is required (e.g. '
                             "dict(type='LinearClsHead', ...))")
        if train_cfg is None:
            train_cfg = dict(augments=dict(type='RecursiveMixBatchAugment'))
        data_preprocessor = copy.deepcopy(data_preprocessor) or {}
        if isinstance(data_preprocessor, dict):
            data_preprocessor.setdefault('type', 'RMDataPreprocessor')
        super().__init__(backbone, neck=neck, head=head, pretrained=pretrained,
                         train_cfg=train_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(self.data_preprocessor, RMDataPreprocessor):
            raise ValueError('RMClassifier: data_preprocessor must be an RMDataPreprocessor '
                             "(type='RMDataPreprocessor', the default), got "
                             f'{type(self.data_preprocessor).__name__}')
        self.data_preprocessor._owned_by_rm_classifier = True
        check_head_loss(self.head)

        self.feature_tap = build_feature_tap(self.backbone, self.neck if self.with_neck else None)
        # the dotted name, not the module: an attribute would register it a second time
        self._final_linear_name, final_linear = self._find_final_linear()
        num_classes = self._num_classes(final_linear)
        check_num_classes('RMClassifier', self.data_preprocessor, num_classes)
        self.data_preprocessor._model_num_classes = num_classes
        self.data_preprocessor._model_input = input_channels(self.backbone)
        roi_head = dict(type='RoIConsistencyHead') if roi_head is None else dict(roi_head)
        roi_head.setdefault('num_classes', num_classes)
        width = self._pooled_width(final_linear)
        if 'in_channels' not in roi_head:
            if width is None:
                raise ValueError(
                    'RMClassifier: cannot tell the width of the map pooled at '
                    f'{self.feature_tap.describe()} (the neck transforms it before the head): '
                    'set roi_head.in_channels to its number of channels')
            roi_head['in_channels'] = width
        self.roi_head: RoIConsistencyHead = MODELS.build(roi_head)
        check_roi_head(self.roi_head, num_classes, width, self.head, final_linear,
                       self._final_linear_name, self.feature_tap.describe())
        self._check_history_use(self.data_preprocessor.rm_augment)
        # Main logits of the last training step (p^h of Eq. 3), detached, and whether that
        # step's loss was finite (a 0-d device bool, until the next mix reads it).
        self._hist_logits: Optional[torch.Tensor] = None
        self._hist_ok: Optional[torch.Tensor] = None
        # (h, w) of the RoI map per input (H, W), seen in training: with it the preprocessor
        # builds the RoI input of each box on the host (RMMix.roi, see _prepare_roi)
        self._roi_grids: Dict[Tuple[int, int], Tuple[int, int]] = {}
        self.data_preprocessor._prepare_roi = self._prepare_roi
        # bound methods, not lambdas: a deep copy (EMAHook's averaged model) rebinds them
        self.data_preprocessor._outputs_ok = self._take_outputs_ok
        self.data_preprocessor._on_switch = self._drop_history

    # ---------------------------------------------------------------- build-time checks
    def _find_final_linear(self) -> Tuple[Optional[str], Optional[nn.Linear]]:
        """The main classifier's last linear layer (the one ``share_fc`` reuses): in the head,
        the last ``nn.Linear`` giving the head's classes (a distillation classifier excluded);
        for a head without layers (Inception-v3's ``ClsHead``), the backbone's own."""
        k = getattr(self.head, 'num_classes', None)

        def pick(named, prefix):
            found = [(n, m) for n, m in named if isinstance(m, nn.Linear)
                     and 'dist' not in n and (k is None or m.out_features == k)]
            return (prefix + found[-1][0], found[-1][1]) if found else None

        return (pick(self.head.named_modules(), 'head.')
                or pick(self.backbone.named_children(), 'backbone.') or (None, None))

    def _num_classes(self, final_linear: Optional[nn.Linear]) -> int:
        k = getattr(self.head, 'num_classes', None)
        if k is None and final_linear is not None:
            k = final_linear.out_features
        if k is None:
            k = self.data_preprocessor.num_classes
        if not k:
            raise ValueError('RMClassifier: cannot tell the number of classes: set '
                             'roi_head.num_classes')
        return int(k)

    def _pooled_width(self, final_linear: Optional[nn.Linear]) -> Optional[int]:
        """Channels of the pooled map where the structure tells them, else None."""
        if self.feature_tap.feeds_head_directly:
            width = getattr(self.head, 'in_channels', None)
            if isinstance(width, int):
                return width
            if final_linear is not None and self._final_linear_name.startswith('head.'):
                return final_linear.in_features  # e.g. LeViT's head: BN1d + linear
        if final_linear is not None and self._final_linear_name.startswith('backbone.'):
            return final_linear.in_features  # the backbone pools, then classifies itself
        return None

    def _check_history_use(self, aug) -> None:
        if aug is not None and self.roi_head.omega > 0 and not aug.use_history:
            raise ValueError('RMClassifier: RecursiveMixBatchAugment(use_history=False) has no '
                             'historical prediction to be consistent with; set '
                             'roi_head.omega=0 for the "no HIS" ablation')

    # ---------------------------------------------------------------- training
    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor', rm_mix: Optional[RMMix] = None):
        """As :meth:`ImageClassifier.forward`; ``rm_mix`` (from :class:`RMDataPreprocessor`
        in training) goes to :meth:`loss`."""
        if mode == 'loss':
            return self.loss(inputs, data_samples, rm_mix=rm_mix)
        return super().forward(inputs, data_samples, mode)

    def _history_target(self, logits: torch.Tensor) -> torch.Tensor:
        """p^h for the first N samples, pairing sample i with history sample i as the augment
        does; zeros where there is no usable history (then lam is 0 and the term weighs 0)."""
        hist = self._hist_logits
        n = logits.size(0)
        if hist is None or hist.size(0) < n or hist.shape[1:] != logits.shape[1:]:
            return torch.zeros_like(logits)
        return hist[:n]

    def _drop_history(self, aug) -> None:
        """A recipe switch is turning RM off (``aug`` None) or on again (``aug`` the new
        augment, checked here): the next RM step starts without p^h."""
        self._check_history_use(aug)
        self._hist_logits = None
        self._hist_ok = None

    def _take_outputs_ok(self) -> Optional[torch.Tensor]:
        """Whether the last step's loss was finite (a 0-d device bool), once: the preprocessor
        asks before the next mix, so that a rejected batch is not pasted."""
        ok, self._hist_ok = self._hist_ok, None
        return ok

    def _keep_logits(self, logits: torch.Tensor, loss: torch.Tensor, rm_mix: RMMix) -> None:
        """``p^h <- logits`` (detached), unless the step's main ``loss`` is not finite, which it
        is whenever the mixed batch or a logit is not (the targets are checked on the host):
        then p^h stays the last finite one (zeros, a uniform prediction, where none of this
        shape exists), and the preprocessor keeps the augment's image history likewise
        (:meth:`_take_outputs_ok`). Decided on the device, no host sync."""
        if not rm_mix.active:
            self._hist_logits = self._hist_ok = None  # RM switched off: no history to keep
            return
        logits = logits.detach()
        ok = torch.isfinite(loss.detach())
        prev = self._hist_logits
        if prev is None or prev.shape != logits.shape:
            prev = logits.new_zeros(())
        self._hist_logits = torch.where(ok, logits, prev)
        self._hist_ok = ok

    def _prepare_roi(self, mix: RMMix) -> Optional[torch.Tensor]:
        """``RMMix.roi`` of a batch, built on the host (in the preprocessor's eager part):
        the box reaches a compiled :meth:`loss` as tensor data, so one graph serves every box.
        None until a training forward has shown the map size for this input size."""
        grid = self._roi_grids.get(mix.input_hw)
        if grid is None:
            return None
        return self.roi_head.prepare(mix.box, mix.input_hw, grid, mix.scores.size(0),
                                     mix.scores.device)

    def loss(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
             rm_mix: Optional[RMMix] = None) -> dict:
        """``loss_cls`` (CE on the mixed targets) and ``loss_rm`` (the RoI consistency term),
        whose sum MMEngine optimises and logs as ``loss``; updates p^h."""
        if rm_mix is None:
            if data_samples is None:
                raise ValueError('RMClassifier: a training batch needs data_samples with '
                                 'targets (gt_label or gt_score); this batch has none')
            raise RuntimeError('RMClassifier.loss needs rm_mix, what RMDataPreprocessor makes '
                               'of a labelled batch in training mode (model.data_preprocessor('
                               'data, training=True) gives it with the inputs)')
        with self.feature_tap.capture(rm_mix.input_hw) as found:
            logits = self.head(self.extract_feat(inputs))
        # 'loss_cls', not 'loss': MMEngine logs the sum of the 'loss*' terms as 'loss'
        losses = dict(loss_cls=self.head.loss_module(logits, rm_mix.scores,
                                                     avg_factor=logits.size(0)))
        self._roi_grids[rm_mix.input_hw] = found.map.grid_hw
        shared = self.get_submodule(self._final_linear_name) if self.roi_head.share_fc else None
        # compiled code reads the box and lam only as tensors (Python numbers: one graph each)
        roi_logits = self.roi_head(found.map, rm_mix.box if rm_mix.roi is None else None,
                                   rm_mix.input_hw, fc=shared, post_pool=found.post_pool,
                                   roi=rm_mix.roi)
        lam = rm_mix.lam_tensor if torch.compiler.is_compiling() else rm_mix.lam
        losses['loss_rm'] = self.roi_head.loss(roi_logits, self._history_target(logits), lam)
        self._keep_logits(logits, losses['loss_cls'], rm_mix)
        return losses
