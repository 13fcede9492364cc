"""Data preprocessor that runs RecursiveMix and hands the classifier what it did."""
from typing import Callable, List, Optional, Tuple

import torch
from mmpretrain.models.utils import ClsDataPreprocessor, RandomBatchAugment
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmrm.structures import RMMix
from ..batch_augments import RecursiveMixBatchAugment
from ..utils import check_batch, check_channels, check_targets, to_device_async
from ..utils.options import check_number


@MODELS.register_module()
class RMDataPreprocessor(ClsDataPreprocessor):
    """A :class:`ClsDataPreprocessor` whose batch augment is RecursiveMix.

    Evaluation is the plain ``ClsDataPreprocessor`` path. In training it normalises the inputs
    as its parent does, then works per BATCH, never per sample:

    - the ``gt_label`` of the samples become one ``(N,)`` label tensor, copied to the device
      from page-locked memory without blocking, and one-hot ``(N, K)`` scores made on the
      device in one scatter (samples that already carry ``gt_score`` are stacked instead);
    - :class:`RecursiveMixBatchAugment` mixes inputs and scores (Eq. 1-2);
    - the result leaves as ``rm_mix`` (:class:`~mmrm.structures.RMMix`: mixed scores, the
      pasted box and lambda), next to ``inputs`` and the untouched ``data_samples``;
      :class:`RMClassifier` takes it as a keyword of ``loss``. No per-sample field is written.

    So the host work of a training batch does not grow with its size (beyond gathering the
    labels), and nothing makes the host wait for the device: a step with this preprocessor
    makes no host-device synchronisation (``tools/analysis_tools/cuda_sync_check.py``).

    Under ``torch.compile`` (MMEngine's ``compile=True`` compiles ``train_step``) the
    normalisation is compiled, while the mixing runs eagerly on purpose (:meth:`_mix`): the box
    draw and its paste are host-side and data-dependent, and traced they would be a new graph
    for every box. What the mixing hands on is tensors (``RMMix.roi``, ``RMMix.lam_tensor``), so
    the forward, the RoI head and the loss compile once for all boxes.

    Args:
        batch_augments (dict): as in mmpretrain, ``dict(augments=dict(type=
            'RecursiveMixBatchAugment', ...))`` (usually given as the classifier's
            ``train_cfg``). Exactly one augment, a RecursiveMixBatchAugment, and no ``probs``:
            RM needs a consistent history, so it cannot be mixed at random with other augments.
        non_blocking (bool): copy the inputs to the device without blocking (default True;
            correct for pageable memory too, and free of waiting with ``pin_memory=True`` in
            the dataloader).
        **kwargs: the other :class:`ClsDataPreprocessor` arguments.
    """

    def __init__(self, batch_augments: Optional[dict] = None, non_blocking: bool = True,
                 **kwargs):
        if kwargs.get('num_classes') is not None:
            check_number('RMDataPreprocessor', 'num_classes', kwargs['num_classes'], 1,
                         integer=True)
        if batch_augments is None:
            batch_augments = dict(augments=dict(type='RecursiveMixBatchAugment'))
        if not isinstance(batch_augments, dict) or 'augments' not in batch_augments:
            raise ValueError('RMDataPreprocessor: batch_augments must be dict(augments=dict('
                             f"type='RecursiveMixBatchAugment', ...)), got {batch_augments!r}")
        augments = batch_augments['augments']
        if isinstance(augments, (list, tuple)):
            if len(augments) != 1:
                raise ValueError('RMDataPreprocessor: batch_augments.augments must hold exactly '
                                 'one RecursiveMixBatchAugment, got '
                                 f'{len(augments)} augments')
            augments = augments[0]
        if batch_augments.get('probs') is not None:
            raise ValueError('RMDataPreprocessor: batch_augments.probs must be None (RecursiveMix '
                             'runs at every step to keep its history consistent), got '
                             f"{batch_augments['probs']!r}")
        aug_type = augments.get('type') if isinstance(augments, dict) else type(augments).__name__
        if aug_type not in ('RecursiveMixBatchAugment', RecursiveMixBatchAugment):
            raise ValueError('RMDataPreprocessor: the batch augment must be '
                             f"'RecursiveMixBatchAugment', got {aug_type!r}; for CutMix or "
                             'Mixup use ImageClassifier with ClsDataPreprocessor')
        # Set by RMClassifier (before the parent's __init__ assigns batch_augments, whose
        # setter reads it): called with the new augment (or None) when a recipe switch turns
        # RM off or on again.
        self._on_switch: Optional[Callable] = None
        super().__init__(batch_augments=dict(augments=augments), **kwargs)
        self._non_blocking = bool(non_blocking)
        # Set by RMClassifier; a plain ImageClassifier would silently drop the RM loss.
        self._owned_by_rm_classifier = False
        # the classifier's class count and (in_channels, name) of its first convolution (set
        # by RMClassifier), to check the targets' width and the images' channels
        self._model_num_classes: Optional[int] = None
        self._model_input: Tuple[Optional[int], Optional[str]] = (None, None)
        # Set by RMClassifier: RMMix -> RMMix.roi (or None while the map size is unknown).
        self._prepare_roi: Optional[Callable[[RMMix], Optional[torch.Tensor]]] = None
        # Set by RMClassifier: whether its last step's loss was finite (a 0-d device bool, or
        # None), so that a batch with a non-finite loss does not become RM's history.
        self._outputs_ok: Optional[Callable[[], Optional[torch.Tensor]]] = None

    @property
    def batch_augments(self) -> Optional[RandomBatchAugment]:
        """RM's ``RandomBatchAugment`` (one :class:`RecursiveMixBatchAugment`), or None when a
        recipe switch turned batch augments off: training is then plain (no mix, no
        consistency loss, no history).

        Assigning it is how MMPretrain's ``SwitchRecipeHook`` switches recipes
        (``model.data_preprocessor.batch_augments = ...``): None turns RM off and drops its
        history; a ``RandomBatchAugment`` of one ``RecursiveMixBatchAugment`` and no ``probs``
        (e.g. another alpha) turns it back on with a fresh history; anything else is refused
        with a ValueError, since RM's history and consistency loss need RM's own augment.
        """
        return self.__dict__.get('_rm_batch_augments')

    @batch_augments.setter
    def batch_augments(self, value) -> None:
        check_rm_batch_augments(value)
        aug = None if value is None else value.augments[0]
        if self.__dict__.get('_on_switch') is not None:
            self._on_switch(aug)  # the classifier checks the augment, drops its p^h
        if aug is not None:
            aug.reset()  # a fresh history for a recipe switched in, even a reused instance
            aug.check_finite = False  # the classifier judges the step's loss instead
        self.__dict__['_rm_batch_augments'] = value

    @property
    def rm_augment(self) -> Optional[RecursiveMixBatchAugment]:
        """The RM augment, or None while a recipe switch has turned batch augments off."""
        augments = self.batch_augments
        return None if augments is None else augments.augments[0]

    def batch_scores(self, samples: List[DataSample], device: torch.device) -> torch.Tensor:
        """``(N, K)`` float32 targets of a batch on ``device``: one-hot of the ``gt_label``s,
        or the stacked ``gt_score``s where the samples have them, K the classifier's classes.
        Both are checked on the host first (:func:`~mmrm.models.utils.check_targets`: labels in
        MMPretrain's forms, integers below K; score rows of width K, finite, non-negative,
        summing to 1 within their dtype's rounding), so a bad target stops before any step."""
        first = samples[0]
        num_classes = self.num_classes or self._model_num_classes or first.get('num_classes')
        check_targets('RMDataPreprocessor', samples, num_classes)  # host data: no sync
        if 'gt_score' in first:
            scores = torch.stack([s.gt_score for s in samples]).float()
            return to_device_async(scores, device)
        labels = torch.cat([s.gt_label for s in samples])
        if labels.numel() != len(samples):
            raise ValueError('RMDataPreprocessor: RecursiveMix mixes single-label targets, one '
                             f'gt_label per sample; got {labels.numel()} labels for '
                             f'{len(samples)} samples')
        if num_classes is None:
            raise ValueError('RMDataPreprocessor: set num_classes (data_preprocessor.num_classes'
                             ' or the dataset\'s) to make one-hot targets')
        labels = to_device_async(labels, device)
        scores = torch.zeros(len(samples), num_classes, device=device)
        return scores.scatter_(1, labels[:, None], 1.)

    def forward(self, data: dict, training: bool = False) -> dict:
        check_batch('RMDataPreprocessor', data['inputs'], data.get('data_samples'))
        if not training:
            out = super().forward(data, False)
            check_channels('RMDataPreprocessor', out['inputs'], *self._model_input)
            return out
        if not self._owned_by_rm_classifier:
            raise RuntimeError(
                'RMDataPreprocessor must be the data_preprocessor of an RMClassifier '
                "(model.type='RMClassifier'). For the history-without-consistency ablation in "
                "a plain ImageClassifier use train_cfg=dict(augments=dict("
                "type='RecursiveMixBatchAugment')) with the default ClsDataPreprocessor.")
        # the parent normalises, converts to RGB and pads; it sees no samples, so no labels
        inputs = super().forward(dict(inputs=data['inputs']), training)['inputs']
        check_channels('RMDataPreprocessor', inputs, *self._model_input)
        samples = data.get('data_samples')
        if samples is None:
            # a batch without labels skips the augment; never report a stale box for it
            if self.rm_augment is not None:
                self.rm_augment.last_box, self.rm_augment.last_lam = (0, 0, 0, 0), 0.
            return dict(inputs=inputs, data_samples=samples)
        if not isinstance(samples[0], DataSample):
            raise TypeError('RMDataPreprocessor: training samples must be mmpretrain '
                            f'DataSample, got {type(samples[0]).__name__}')
        return self._mix(inputs, samples)

    @torch.compiler.disable(reason='RM box draw and paste: host-side, data-dependent, cheap')
    def _mix(self, inputs: torch.Tensor, samples: List[DataSample]) -> dict:
        """Targets, RM mixing and the RoI input of the box; eager under torch.compile.

        With RM switched off (``batch_augments`` None) the targets are the plain ones and the
        ``RMMix`` says so (``active=False``, nothing pasted), so the classifier trains plainly
        while its RoI head stays in the graph with weight 0."""
        aug = self.rm_augment
        scores = self.batch_scores(samples, inputs.device)
        if aug is None:
            mix = RMMix(scores=scores, box=(0, 0, 0, 0), lam=0., input_hw=tuple(inputs.shape[-2:]),
                        active=False)
        else:
            if self._outputs_ok is not None:
                # the classifier's verdict on the last step: a batch whose loss was not finite
                # (a corrupt image, non-finite logits) is not pasted now
                aug.keep_history_if(self._outputs_ok())
            inputs, scores = aug(inputs, scores)
            mix = RMMix(scores=scores, box=tuple(aug.last_box), lam=float(aug.last_lam),
                        input_hw=tuple(inputs.shape[-2:]))
        if self._prepare_roi is not None:
            mix.roi = self._prepare_roi(mix)
        return dict(inputs=inputs, data_samples=samples, rm_mix=mix)


def check_rm_batch_augments(value, owner: str = 'RMDataPreprocessor') -> None:
    """What RM's data preprocessor accepts as ``batch_augments`` at run time: None (RM off) or
    a ``RandomBatchAugment`` holding one :class:`RecursiveMixBatchAugment` and no ``probs``."""
    if value is None:
        return
    augments = getattr(value, 'augments', None)
    ok = (isinstance(value, RandomBatchAugment) and isinstance(augments, (list, tuple))
          and len(augments) == 1 and isinstance(augments[0], RecursiveMixBatchAugment)
          and getattr(value, 'probs', None) is None)
    if not ok:
        what = [type(a).__name__ for a in augments] if isinstance(augments, (list, tuple)) \
            else type(value).__name__
        raise ValueError(
            f'{owner}: batch_augments can switch only between None (RecursiveMix off: plain '
            "training from then on) and dict(augments=dict(type='RecursiveMixBatchAugment', "
            '...)) with no probs (RecursiveMix on, e.g. with another alpha, from a fresh '
            f'history); got {what}. RM\'s history and consistency loss need its own augment: '
            'for CutMix or Mixup train an ImageClassifier')
