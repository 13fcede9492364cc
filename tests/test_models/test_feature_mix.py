"""Manifold Mixup, Feature CutMix, MoEx and FeatureMixClassifier: exact mixed features at the
drawn layer, exact label weights, composed labels of CutMix + MoEx, build-time errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmrm.models import FeatureCutMix, FeatureMixClassifier, ManifoldMixup, MoEx
from mmrm.models.batch_augments.moex import pono_moments

NUM_CLASSES = 3


def onehot(labels):
    return F.one_hot(torch.as_tensor(labels), NUM_CLASSES).float()


def tiny_model(feature_mix, **kwargs):
    return MODELS.build(dict(
        type='FeatureMixClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=32,
                  loss=dict(type='CrossEntropyLoss', use_soft=True)),
        feature_mix=feature_mix, data_preprocessor=dict(num_classes=NUM_CLASSES), **kwargs))


def samples(labels):
    return [DataSample().set_gt_label(int(k)).set_gt_score(onehot(k)) for k in labels]


def test_manifold_mixup_op_exact():
    x = torch.randn(4, 2, 3, 3)
    y = onehot([0, 1, 2, 0])
    index = torch.tensor([2, 0, 3, 1])
    np.random.seed(3)
    lam = np.random.beta(0.4, 0.4)
    np.random.seed(3)
    out, score = ManifoldMixup(alpha=0.4)(x, y, index)
    assert torch.allclose(out, lam * x + (1 - lam) * x[index])
    assert torch.allclose(score, lam * y + (1 - lam) * y[index])


def test_feature_cutmix_pastes_the_box_and_weights_by_area():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    y = onehot([0, 1])
    index = torch.tensor([1, 0])
    op = FeatureCutMix(alpha=1.0)
    op._sampler.cutmix_bbox_and_lam = lambda shape, lam: ((2, 6, 1, 4), 1 - 12 / 64)
    out, score = op(x, y, index)
    box = torch.zeros(8, 8, dtype=torch.bool)
    box[2:6, 1:4] = True
    assert torch.equal(out[..., box], x[index][..., box])
    assert torch.equal(out[..., ~box], x[..., ~box])
    lam = 1 - 12 / 64
    assert op.last_lam == lam
    assert torch.allclose(score, lam * y + (1 - lam) * y[index])


def test_moex_gives_the_partner_moments_and_the_fixed_label_weight():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 16, 4, 5, generator=g) * 3 + torch.randn(3, 1, 4, 5, generator=g)
    index = torch.tensor([1, 2, 0])
    op = MoEx(lam=0.7, eps=1e-5)
    out, score = op(x, onehot([0, 1, 2]), index)
    mean, std = pono_moments(x, 1e-5)
    out_mean, out_std = pono_moments(out, 1e-5)
    assert torch.allclose(out_mean, mean[index], atol=1e-5)
    assert torch.allclose(out_std, std[index], rtol=1e-4)
    # each position keeps its own normalised feature vector
    assert torch.allclose((out - out_mean) / out_std, (x - mean) / std, atol=1e-4)
    assert torch.allclose(score, 0.7 * onehot([0, 1, 2]) + 0.3 * onehot([1, 2, 0]))


def test_prob_zero_and_one():
    x, y = torch.randn(4, 2, 3, 3), onehot([0, 1, 2, 0])
    out, score = MoEx(lam=0.5, prob=0.)(x, y)
    assert out is x and torch.equal(score, y)
    out, _ = MoEx(lam=0.5, prob=1.)(x, y, torch.tensor([1, 0, 3, 2]))
    assert not torch.allclose(out, x)


def _captured(module, what):
    store = {}
    if what == 'input':
        handle = module.register_forward_pre_hook(lambda m, args: store.update(v=args[0].clone()))
    else:
        handle = module.register_forward_hook(lambda m, a, out: store.update(v=out.clone()))
    return store, handle


@pytest.mark.parametrize('layer', ['input', 'backbone.layer1', 'backbone.layer2'])
def test_classifier_mixes_exactly_at_the_drawn_layer(layer):
    torch.manual_seed(0)
    model = tiny_model(dict(type='ManifoldMixup', alpha=1.0, layers=[layer]))
    model.train()
    x = torch.randn(4, 3, 16, 16)
    labels = [0, 1, 2, 1]
    # clean forward: what the drawn layer outputs (train-mode BN, the same batch)
    mod = model.backbone.conv1 if layer == 'input' else model.get_submodule(layer)
    clean, handle = _captured(mod, 'input' if layer == 'input' else 'output')
    model.extract_feat(x)
    handle.remove()
    # the next module's input in the mixing forward is the mixed state
    nxt = {'input': model.backbone.conv1, 'backbone.layer1': model.backbone.layer2,
           'backbone.layer2': model.backbone.layer3}[layer]
    mixed, handle = _captured(nxt, 'input')
    data_samples = samples(labels)
    torch.manual_seed(5)
    index = torch.randperm(4)
    assert not torch.equal(index, torch.arange(4))
    torch.manual_seed(5)  # the step's first torch draw is its permutation
    losses = model.loss(x, data_samples)
    handle.remove()
    (name, drawn, lam), = model.last_mixes
    assert (name, drawn) == ('ManifoldMixup', layer) and 0 <= lam <= 1
    assert torch.allclose(mixed['v'], lam * clean['v'] + (1 - lam) * clean['v'][index], atol=1e-6)
    y = onehot(labels)
    got = torch.stack([s.gt_score for s in data_samples])
    assert torch.allclose(got, lam * y + (1 - lam) * y[index])
    assert torch.isfinite(losses['loss'])


def test_cutmix_then_moex_labels_compose_as_the_authors_loss():
    torch.manual_seed(0)
    model = tiny_model([dict(type='FeatureCutMix', alpha=1.0, layers=['input']),
                        dict(type='MoEx', lam=0.9, prob=1.0, layers=['backbone.relu'])])
    labels = [0, 1, 2, 0]
    x, data_samples = torch.randn(4, 3, 16, 16), samples(labels)
    torch.manual_seed(1)
    index = torch.randperm(4)
    assert not torch.equal(index[index], torch.arange(4))  # three distinct partners
    torch.manual_seed(1)  # the step's first torch draw is its permutation
    model.loss(x, data_samples)
    (_, _, lam_c), (_, _, lam_m) = model.last_mixes
    assert lam_m == 0.9
    y = onehot(labels)
    y_a, y_b, y_c = y, y[index], y[index][index]
    # main_moex_cutmix.py: a * lc * lm + b * ((1 - lc) * lm + lc * (1 - lm)) + c * (1-lc)(1-lm)
    expected = (y_a * lam_c * lam_m + y_b * ((1 - lam_c) * lam_m + lam_c * (1 - lam_m)) +
                y_c * (1 - lam_c) * (1 - lam_m))
    assert torch.allclose(torch.stack([s.gt_score for s in data_samples]), expected, atol=1e-6)


def test_train_step_and_plain_predict():
    from mmengine.optim import OptimWrapper
    model = tiny_model(dict(type='FeatureCutMix', alpha=1.0, layers=['backbone.layer2']))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(inputs=torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
                data_samples=[DataSample().set_gt_label(i % 3) for i in range(4)])
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss'])
    assert not model.backbone.layer2._forward_hooks  # the one-shot hook is gone
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    preds = model.predict(x)
    assert torch.allclose(torch.stack([p.pred_score for p in preds]),
                          F.softmax(model.head(model.extract_feat(x)), 1))


def test_bad_settings_fail_at_build():
    with pytest.raises(ValueError, match=r"layer 'backbone.layer9'.*allowed: 'input'"):
        tiny_model(dict(type='MoEx', layers=['backbone.layer9']))
    with pytest.raises(ValueError, match="layer 'head.fc'"):
        tiny_model(dict(type='MoEx', layers=['head.fc']))
    with pytest.raises(ValueError, match=r'MoEx: prob must be a number in \[0, 1\]'):
        tiny_model(dict(type='MoEx', prob=1.5, layers=['input']))
    with pytest.raises(ValueError, match=r'MoEx: lam must be a number in \[0, 1\]'):
        MoEx(lam=-0.1)
    with pytest.raises(ValueError, match='ManifoldMixup: alpha must be a number > 0'):
        ManifoldMixup(alpha=0)
    with pytest.raises(ValueError, match='layers must be a non-empty list'):
        FeatureCutMix(layers=[])
    with pytest.raises(ValueError, match='feature_mix is required'):
        tiny_model(None)
    assert isinstance(tiny_model(dict(type='MoEx', layers=['input'])), FeatureMixClassifier)


def test_a_layer_that_runs_twice_is_refused():
    # a BasicBlock calls its `relu` twice
    model = tiny_model(dict(type='MoEx', layers=['backbone.layer1.0.relu']))
    with pytest.raises(RuntimeError, match='ran more than once'):
        model.loss(torch.randn(2, 3, 16, 16), samples([0, 1]))
