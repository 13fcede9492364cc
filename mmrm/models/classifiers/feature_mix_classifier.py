"""FeatureMixClassifier: an ImageClassifier that mixes hidden states (Manifold Mixup, Feature
CutMix, MoEx, and combinations such as CutMix + MoEx)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import BATCH_AUGMENTS, MODELS
from mmpretrain.structures import DataSample

from ..utils import check_batch, check_channels, check_num_classes, check_targets, input_channels

INPUT = 'input'


def onehot_preprocessor(data_preprocessor) -> Union[dict, nn.Module]:
    """The classifier's data preprocessor config with ``to_onehot=True`` by default, so that
    every sample carries the ``gt_score`` the mixing ops interpolate."""
    if isinstance(data_preprocessor, nn.Module):
        return data_preprocessor
    data_preprocessor = copy.deepcopy(data_preprocessor) or {}
    data_preprocessor.setdefault('to_onehot', True)
    return data_preprocessor


def stack_scores(owner: str, data_samples: List[DataSample]) -> torch.Tensor:
    if not data_samples or 'gt_score' not in data_samples[0]:
        raise RuntimeError(f'{owner} mixes labels and needs one-hot `gt_score` in the samples: '
                           'give the data preprocessor num_classes (to_onehot is on by default)')
    return torch.stack([s.gt_score for s in data_samples]).float()


class TargetChecks:
    """Mixin of the label-mixing classifiers: the data preprocessor's class count is the
    head's (at build time; unset, it becomes the head's, the width of the one-hot targets),
    the batch is not empty and the dataset's labels / scores fit the head (before the targets
    are made, i.e. before the first optimizer step), and the images have the channels of the
    backbone's first convolution, with errors naming the sample, option or count."""

    def _init_checks(self) -> None:
        k = getattr(self.head, 'num_classes', None)
        if k is not None:
            check_num_classes(type(self).__name__, self.data_preprocessor, k)
            if getattr(self.data_preprocessor, 'num_classes', 0) is None:
                self.data_preprocessor.num_classes = k
        self._model_input = input_channels(self.backbone)

    def train_step(self, data, optim_wrapper):
        if isinstance(data, dict):
            samples = data.get('data_samples')
            check_batch(type(self).__name__, data['inputs'], samples)
            check_targets(type(self).__name__, samples, getattr(self.head, 'num_classes', None))
        return super().train_step(data, optim_wrapper)

    def extract_feat(self, inputs, *args, **kwargs):
        check_channels(type(self).__name__, inputs, *self._model_input)
        return super().extract_feat(inputs, *args, **kwargs)


@MODELS.register_module()
class FeatureMixClassifier(TargetChecks, ImageClassifier):
    r"""ImageClassifier whose training forward mixes a hidden state and the labels alike.

    Each training step, for every op in ``feature_mix`` (a :class:`ManifoldMixup`,
    :class:`FeatureCutMix`, :class:`MoEx` or any op with the same ``op(x, scores, index)``
    interface and a ``layers`` list):

    1. one layer is drawn uniformly from ``op.layers``: ``'input'`` (the normalised image batch,
       (N, C, H, W)) or the name of a module of the backbone, e.g. ``'backbone.layer1'``;
    2. the forward pass runs once; a one-shot forward hook replaces the drawn module's output
       :math:`h` (N, C', H', W') by ``op(h, y, index)`` and the labels :math:`y` (N, K) by the
       op's mixed labels;
    3. the head's loss is taken on the mixed labels (use ``CrossEntropyLoss(use_soft=True)``).

    One permutation ``index`` per step is shared by all ops, so several ops pair the same
    samples and their label interpolations compose: CutMix (weight :math:`\lambda_c`) then MoEx
    (weight :math:`\lambda_m`) give :math:`\lambda_m\lambda_c\, y_a +
    (\lambda_m(1-\lambda_c) + (1-\lambda_m)\lambda_c)\, y_b + (1-\lambda_m)(1-\lambda_c)\, y_c`,
    exactly the loss of MoEx's CutMix + MoEx code (``main_moex_cutmix.py``). Ops run in the
    order the network reaches their layers (list order within one layer).

    ``predict``, ``extract_feat``, validation and test are the plain ImageClassifier path. Layer
    names are checked when the model is built; a drawn layer that the forward pass did not run
    (or ran twice) is an error at that step.

    Under ``torch.compile`` (MMEngine's ``compile=True``) the ops run eagerly on purpose (their
    draws, see :class:`PairMix`), so no drawn lam or box is compiled in. Not cheap to compile
    beyond that: the per-step layer draw and the one-shot hooks are graph breaks, and each
    hidden layer compiles its own graphs the first time it is drawn, so with several
    ``layers`` recompilations go on until every layer has been drawn (bounded by their
    number; an ``'input'``-only op compiles once).

    Args:
        backbone, neck, head, pretrained, train_cfg, init_cfg: as :class:`ImageClassifier`
            (``train_cfg.augments`` still applies input-level batch augments first).
        feature_mix (dict | list[dict]): the mixing op(s), built from mmpretrain's
            ``BATCH_AUGMENTS`` registry, each with its ``layers``.
        data_preprocessor (dict): as ImageClassifier; ``to_onehot`` defaults to True here.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 feature_mix: Union[dict, Sequence[dict], None] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if not feature_mix:
            raise ValueError("FeatureMixClassifier: feature_mix is required, e.g. "
                             "dict(type='ManifoldMixup', alpha=1.0, layers=['input', "
                             "'backbone.layer1'])")
        super().__init__(backbone, neck=neck, head=head, pretrained=pretrained,
                         train_cfg=train_cfg,
                         data_preprocessor=onehot_preprocessor(data_preprocessor),
                         init_cfg=init_cfg)
        self._init_checks()
        mixes = feature_mix if isinstance(feature_mix, (list, tuple)) else [feature_mix]
        self.feature_mixes = [BATCH_AUGMENTS.build(m) if isinstance(m, dict) else m
                              for m in mixes]
        self._check_layers()
        self._last_plan: List[tuple] = []

    @property
    def last_mixes(self) -> List[tuple]:
        """(op name, layer, label weight or None) of each op at the last training step."""
        # read here, not stored by loss(): a compiled step would specialise on the drawn lam
        return [(type(op).__name__, layer, op.last_lam) for op, layer in self._last_plan]

    def _check_layers(self) -> None:
        modules = dict(self.named_modules())
        children = [f'backbone.{n}' for n, _ in self.backbone.named_children()]
        for op in self.feature_mixes:
            layers = getattr(op, 'layers', None)
            if not callable(op) or not layers:
                raise TypeError('FeatureMixClassifier: each feature_mix op must be callable as '
                                f'op(x, scores, index) and have `layers`, got {op!r}')
            for name in layers:
                if name != INPUT and (not name.startswith('backbone.') or name not in modules):
                    raise ValueError(
                        f'FeatureMixClassifier: {type(op).__name__} layer {name!r} is not '
                        f"'input' nor a module of the backbone {type(self.backbone).__name__}; "
                        f"allowed: 'input' or a module name such as {children}")

    def sample_plan(self, batch_size: int, device: torch.device) -> Tuple[torch.Tensor, list]:
        """The draws of a step: the partner ``index`` (N,) shared by the ops, and
        ``[(op, layer)]`` with each op's layer drawn uniformly from its ``layers``."""
        index = torch.randperm(batch_size, device=device)
        return index, [(op, op.layers[np.random.randint(len(op.layers))])
                       for op in self.feature_mixes]

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        scores = stack_scores('FeatureMixClassifier', data_samples)
        index, plan = self.sample_plan(inputs.size(0), inputs.device)
        state = dict(scores=scores)

        def run(ops, x):
            for op in ops:
                x, state['scores'] = op(x, state['scores'], index)
            return x

        inputs = run([op for op, layer in plan if layer == INPUT], inputs)
        by_layer: Dict[str, list] = {}
        for op, layer in plan:
            if layer != INPUT:
                by_layer.setdefault(layer, []).append(op)
        modules = dict(self.named_modules())
        calls = dict.fromkeys(by_layer, 0)
        handles = []
        for layer, ops in by_layer.items():

            def hook(module, args, output, layer=layer, ops=ops):
                calls[layer] += 1
                if calls[layer] > 1:
                    raise RuntimeError(f'FeatureMixClassifier: mixing layer {layer!r} ran more '
                                       'than once in one forward pass; choose a module that '
                                       'runs once (e.g. a stage, not a shared activation)')
                if not isinstance(output, torch.Tensor):
                    raise TypeError(f'FeatureMixClassifier: mixing layer {layer!r} returned '
                                    f'{type(output).__name__}, not a tensor')
                return run(ops, output)

            handles.append(modules[layer].register_forward_hook(hook))
        try:
            feats = self.extract_feat(inputs)
        finally:
            for handle in handles:
                handle.remove()
        missed = [layer for layer, n in calls.items() if n == 0]
        if missed:
            raise RuntimeError(f'FeatureMixClassifier: mixing layer(s) {missed} did not run in '
                               f'the forward pass of {type(self.backbone).__name__}')
        self._last_plan = plan
        for sample, score in zip(data_samples, state['scores']):
            sample.set_gt_score(score)
        return self.head.loss(feats, data_samples)
