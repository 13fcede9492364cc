"""RM against what MMPretrain recipes and real data do to it, at the level of one model:
recipe switches of ``batch_augments`` (``SwitchRecipeHook``'s assignment), bad targets refused
with the sample and the rule, gradient accumulation's micro-batch history, label smoothing on
mixed targets, and a non-finite batch that never becomes the history. The same through
MMEngine's Runner (hooks, resume, EMA, 2-rank DDP): tests/test_engine/test_rm_recipes.py."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.models.utils import RandomBatchAugment
from mmpretrain.registry import MODELS

import mmrm  # noqa: F401
from mmrm.engine import CPUAmpOptimWrapper
from mmrm.models import RecursiveMixBatchAugment
from tests.test_models.test_classifiers import (NUM_CLASSES, data_batch, soft_ce,
                                                tiny_model_cfg)


@pytest.fixture(autouse=True)
def no_epoch_info():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)


def build(**overrides):
    torch.manual_seed(0)
    m = MODELS.build(tiny_model_cfg(**overrides))
    m.init_weights()
    return m.train()


def sgd(model, **kwargs):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05), **kwargs)


def rm_on(alpha=0.5, **kwargs):
    return RandomBatchAugment(dict(type='RecursiveMixBatchAugment', alpha=alpha, **kwargs))


# ------------------------------------------------------------------ recipe switches


def test_switching_rm_off_trains_plainly_with_every_parameter_in_the_graph():
    model = build()
    pre = model.data_preprocessor
    for seed in (1, 2):
        model.train_step(data_batch(seed=seed), sgd(model))
    assert pre.rm_augment.history_inputs is not None and model._hist_logits is not None

    pre.batch_augments = None  # what SwitchRecipeHook does with batch_augments=None
    assert pre.rm_augment is None and model._hist_logits is None
    batch = data_batch(seed=3)
    d = pre(batch, True)
    labels = torch.cat([s.gt_label for s in batch['data_samples']])
    assert torch.equal(d['inputs'], batch['inputs'])  # nothing pasted
    assert torch.equal(d['rm_mix'].scores, F.one_hot(labels, NUM_CLASSES).float())
    assert not d['rm_mix'].active and d['rm_mix'].lam == 0
    model.zero_grad()
    losses = model.loss(**d)
    logits = model(d['inputs'], mode='tensor')
    assert torch.allclose(losses['loss_cls'], F.cross_entropy(logits, labels), atol=1e-6)
    assert losses['loss_rm'].item() == 0
    sum(losses.values()).backward()
    # the RoI head is still in the graph (weight 0): DDP needs no find_unused_parameters
    assert all(p.grad is not None for p in model.parameters())
    assert model._hist_logits is None  # no history is kept while RM is off


def test_switching_rm_back_on_starts_from_a_fresh_history_with_the_new_alpha():
    model = build()
    pre = model.data_preprocessor
    model.train_step(data_batch(seed=1), sgd(model))
    pre.batch_augments = None
    model.train_step(data_batch(seed=2), sgd(model))
    new = rm_on(alpha=0.3)
    stale = torch.ones(4, 3, 32, 32)
    new.augments[0].history_inputs = stale  # a reused instance must not paste its old batch
    new.augments[0].history_scores = torch.full((4, NUM_CLASSES), 1 / NUM_CLASSES)
    pre.batch_augments = new
    assert pre.rm_augment is new.augments[0] and pre.rm_augment.alpha == 0.3
    assert pre.rm_augment.history_inputs is None and model._hist_logits is None
    lams = []
    for seed in (3, 4, 5, 6):
        model.train_step(data_batch(seed=seed), sgd(model))
        lams.append(pre.rm_augment.last_lam)
    assert lams[0] == 0 and max(lams) > 0 and max(lams) <= 0.3 + 1e-9


@pytest.mark.parametrize('value,shown', [
    (RandomBatchAugment(dict(type='CutMix', alpha=1.0)), "['CutMix']"),
    (RandomBatchAugment([dict(type='RecursiveMixBatchAugment'), dict(type='Mixup', alpha=1.)]),
     "['RecursiveMixBatchAugment', 'Mixup']"),
    (RandomBatchAugment(dict(type='RecursiveMixBatchAugment'), probs=0.5),
     "['RecursiveMixBatchAugment', 'NoneType']"),
    ('CutMix', 'str'),
])
def test_a_switch_to_anything_else_is_refused_and_changes_nothing(value, shown):
    model = build()
    pre = model.data_preprocessor
    before = pre.batch_augments
    with pytest.raises(ValueError, match=r'batch_augments can switch only between None .*'
                                         r"RecursiveMixBatchAugment.*got " + shown.replace(
                                             '[', r'\[').replace(']', r'\]')):
        pre.batch_augments = value
    assert pre.batch_augments is before


def test_a_switch_to_rm_without_history_is_refused_while_the_consistency_loss_is_on():
    model = build()
    with pytest.raises(ValueError, match=r'use_history=False\) has no historical prediction'):
        model.data_preprocessor.batch_augments = rm_on(use_history=False)
    assert model.data_preprocessor.rm_augment.use_history


# ------------------------------------------------------------------ bad targets


def scored_batch(rows):
    batch = data_batch(n=len(rows))
    for s, row in zip(batch['data_samples'], rows):
        s.set_gt_score(torch.tensor(row, dtype=torch.float32))
    return batch


GOOD = [0.2, 0.2, 0.2, 0.2, 0.2]


@pytest.mark.parametrize('bad_row,rule', [
    ([1., 1., 1., 1., 0.], 'the entries sum to 1'),
    ([1.5, -0.5, 0., 0., 0.], r'every entry >= 0'),
    ([float('nan'), 0., 0., 0., 1.], 'every entry finite'),
    ([float('inf'), 0., 0., 0., 0.], 'every entry finite'),
])
@pytest.mark.parametrize('kind', ['rm', 'manifold-mixup', 'puzzlemix'])
def test_bad_soft_targets_stop_before_the_first_step_naming_sample_and_rule(kind, bad_row,
                                                                            rule):
    model = label_mixing_model(kind)
    before = [p.detach().clone() for p in model.parameters()]
    batch = scored_batch([GOOD, GOOD, bad_row, GOOD])
    with pytest.raises(ValueError, match=rf'gt_score of sample 2 of the batch breaks the rule '
                                         rf'"{rule}'):
        model.train_step(batch, sgd(model))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize('kind', ['rm', 'manifold-mixup', 'puzzlemix'])
def test_float_labels_are_refused_naming_the_rule(kind):
    model = label_mixing_model(kind)
    batch = data_batch(n=3)
    batch['data_samples'][0].set_gt_label(torch.tensor([1.]))
    with pytest.raises(ValueError, match=r'gt_label of sample 0 of the batch is torch.float32, '
                                         r'but the rule is "gt_label holds integer class'):
        model.train_step(batch, sgd(model))


@pytest.mark.parametrize('kind', ['rm', 'manifold-mixup', 'puzzlemix'])
def test_good_soft_targets_train(kind):
    model = label_mixing_model(kind)
    smooth = [0.9 + 0.1 / 5 if k == 1 else 0.1 / 5 for k in range(5)]  # label smoothing rows
    losses = model.train_step(scored_batch([GOOD, smooth, GOOD, smooth]), sgd(model))
    assert all(torch.isfinite(v) for v in losses.values())


def label_mixing_model(kind):
    if kind == 'rm':
        return build()
    mix = dict(type='FeatureMixClassifier', feature_mix=dict(
        type='ManifoldMixup', alpha=1.0, layers=('input', 'backbone.layer1'))) \
        if kind == 'manifold-mixup' else dict(
            type='PuzzleMixClassifier', puzzle_mix=dict(type='PuzzleMix', block_nums=(2, 4),
                                                        neigh_size=2))
    cfg = tiny_model_cfg(**mix)
    cfg.pop('roi_head')
    cfg.pop('train_cfg')
    cfg['data_preprocessor'] = dict(cfg['data_preprocessor'], to_onehot=True)
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    m.init_weights()
    return m.train()


# ------------------------------------------------------------------ accumulation, smoothing


def test_under_gradient_accumulation_the_history_is_the_previous_micro_batch():
    model = build()
    pre = model.data_preprocessor
    boxes = iter([(4, 8, 28, 24), (0, 0, 16, 16), (8, 8, 24, 24)])
    pre.rm_augment.sample_box = lambda h, w: next(boxes)
    optim = sgd(model, accumulative_counts=2)
    optim.initialize_count_status(model, 0, 4)
    weights = [p.detach().clone() for p in model.parameters()]
    model.train_step(data_batch(seed=1), optim)
    mixed1 = pre.rm_augment.history_inputs.clone()
    # no optimizer step yet, but micro-batch 1 is already the history
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    batch2 = data_batch(seed=2)
    fresh2 = batch2['inputs'].clone()
    model.train_step(batch2, optim)
    assert any(not torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    mixed2 = pre.rm_augment.history_inputs
    # micro-batch 2 holds micro-batch 1 resized into (0, 0, 16, 16), its own pixels elsewhere
    expect = fresh2.clone()
    expect[..., 0:16, 0:16] = F.interpolate(mixed1, size=(16, 16), mode='nearest')
    assert torch.equal(mixed2, expect)
    assert pre.rm_augment.last_lam == 0.25


def test_label_smoothing_smooths_the_mixed_targets():
    model = build(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                                      mode='original')))
    pre = model.data_preprocessor
    pre.rm_augment.sample_box = lambda h, w: (4, 8, 28, 24)
    model.loss(**pre(data_batch(seed=1), True))
    d = pre(data_batch(seed=2), True)
    losses = model.loss(**d)
    y = d['rm_mix'].scores
    assert d['rm_mix'].lam > 0 and (y.max(1).values < 1).all()
    logits = model(d['inputs'], mode='tensor')
    smoothed = y * 0.9 + 0.1 / NUM_CLASSES  # LabelSmoothLoss 'original' on soft scores
    assert torch.allclose(losses['loss_cls'], soft_ce(logits, smoothed), atol=1e-6)


# ------------------------------------------------------------------ non-finite batches


def test_a_non_finite_batch_never_becomes_the_history():
    aug = RecursiveMixBatchAugment(alpha=1.0, reset_history='never')
    aug.sample_box = lambda h, w: (0, 0, 8, 8)
    scores = F.one_hot(torch.arange(4) % 3, 3).float()
    x1 = torch.rand(4, 3, 16, 16)
    aug(x1.clone(), scores)
    clean = aug.history_inputs.clone()
    bad = torch.rand(4, 3, 16, 16)
    bad[2, 1, 12, 12] = float('nan')  # outside the box: the output keeps it
    out, _ = aug(bad, scores)
    assert not torch.isfinite(out).all()  # the bad batch itself is what it is
    assert not bool(aug.last_finite)
    assert torch.equal(aug.history_inputs, clean)  # the last finite batch stays
    x3 = torch.rand(4, 3, 16, 16)
    out3, _ = aug(x3.clone(), scores)
    assert torch.isfinite(out3).all()
    assert torch.equal(out3[..., :8, :8], F.interpolate(clean, size=(8, 8), mode='nearest'))


def test_a_first_batch_that_is_not_finite_leaves_a_blank_history():
    aug = RecursiveMixBatchAugment(alpha=1.0, reset_history='never')
    aug.sample_box = lambda h, w: (0, 0, 8, 8)
    bad = torch.full((2, 1, 16, 16), float('inf'))
    aug(bad, F.one_hot(torch.tensor([0, 2]), 3).float())
    assert torch.equal(aug.history_inputs, torch.zeros(2, 1, 16, 16))
    assert torch.equal(aug.history_scores, torch.full((2, 3), 1 / 3))


def test_non_finite_logits_on_a_finite_batch_undo_its_history():
    model = build()
    pre = model.data_preprocessor
    model.train_step(data_batch(seed=1), sgd(model))
    clean_x, clean_p = pre.rm_augment.history_inputs.clone(), model._hist_logits.clone()
    fc = model.head.fc
    saved = fc.bias.detach().clone()
    with torch.no_grad():
        fc.bias[0] = float('inf')  # finite inputs, non-finite outputs
    d = pre(data_batch(seed=2), True)
    model.loss(**d)
    assert torch.equal(model._hist_logits, clean_p)
    with torch.no_grad():
        fc.bias.copy_(saved)
    pre.rm_augment.sample_box = lambda h, w: (0, 0, 16, 16)
    d3 = pre(data_batch(seed=3), True)  # the veto is applied before this mix
    assert torch.equal(d3['inputs'][..., :16, :16],
                       F.interpolate(clean_x, size=(16, 16), mode='nearest'))


@pytest.mark.parametrize('rm', [True, False])
def test_one_corrupt_batch_costs_exactly_one_skipped_step(rm):
    """Steps with AMP's loss scaler (CPUAmpOptimWrapper), one batch with a NaN pixel: its step
    is skipped and every later step is finite, with RM as without it (before: 3-4 steps)."""
    cfg = tiny_model_cfg()
    if not rm:
        cfg['type'] = 'ImageClassifier'
        cfg.pop('roi_head')
        cfg.pop('train_cfg')
        cfg['head'] = dict(cfg['head'], loss=dict(type='CrossEntropyLoss'))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    if rm:
        model.data_preprocessor.rm_augment.sample_box = lambda h, w: (4, 4, 28, 28)
    optim = CPUAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    finite = []
    for step in range(7):
        batch = data_batch(seed=step)
        if step == 2:
            batch['inputs'][1, 0, 3, 3] = float('nan')
        weights = [p.detach().clone() for p in model.parameters()]
        losses = model.train_step(batch, optim)
        ok = all(bool(torch.isfinite(v)) for v in losses.values())
        finite.append(ok)
        if not ok:  # the scaler skipped the step: no weight changed
            assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    assert finite == [True, True, False, True, True, True, True]
