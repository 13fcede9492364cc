"""Manifold Mixup, Feature CutMix, MoEx and FeatureMixClassifier: exact mixed features at the
drawn layer, exact label weights, composed labels of CutMix + MoEx, build-time errors."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmrm.models import FeatureCutMix, FeatureMixClassifier, ManifoldMixup, MoEx

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
    # numpy, per sample and position: (v - mean) / std * std' + mean' over the C channels
    torch.testing.assert_close(out, ref_pono_moex(x, index, 1e-5), rtol=1e-5, atol=1e-5)
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
    with pytest.raises(ValueError, match='ManifoldMixup: alpha must be a finite number > 0'):
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


# --------------------------------------------------------------------------------------------
# Each op, inside the configs' own models, against an independent reference of its authors'
# algorithm: the backbone's forward written out module by module with the op applied by hand
# (loops / numpy) at the drawn layer, soft CE on the reference labels; identical inputs and
# draws (chosen, never seeded).
# --------------------------------------------------------------------------------------------
_MODELS = {}


def config_model(name, head=None, **backbone):
    """The model of ``configs/rm/<name>`` (backbone / head settings overridden), built once:
    the tests take no optimiser step, so its weights are the same for every test."""
    key = (name, repr(head), repr(sorted(backbone.items())))
    if key not in _MODELS:
        from mmrm.utils import load_config, model_config
        model_cfg = model_config(load_config(f'configs/rm/{name}'))
        model_cfg['backbone'].update(backbone)
        model_cfg['head'].update(head or {})
        torch.manual_seed(0)
        _MODELS[key] = MODELS.build(model_cfg)
    return _MODELS[key].train()


class Draws:
    """np.random.beta / randint / rand return the listed values in order (each list must be
    used up: every draw the algorithm makes is one the test chose)."""

    def __init__(self, monkeypatch, **values):
        self.values = {k: list(v) for k, v in values.items()}
        for name in ('beta', 'randint', 'rand'):
            monkeypatch.setattr(np.random, name, self._take(name))

    def _take(self, name):
        def draw(*args, **kwargs):
            assert self.values.get(name), f'unexpected np.random.{name}{args}'
            return self.values[name].pop(0)
        return draw

    def used_up(self):
        return not any(self.values.values())


def ref_backbone(backbone, x, layer, op):
    """The backbone's forward written out (mmpretrain ResNet / ResNet_CIFAR, mmrm PyramidNet),
    ``op`` applied to the output of ``layer`` ('input' or 'backbone.<module>')."""
    from mmrm.models.backbones.pyramidnet import PyramidNet

    def at(name, h):
        return op(h) if name == layer else h

    h = at('input', x)
    if isinstance(backbone, PyramidNet):
        h = at('backbone.bn1', backbone.bn1(backbone.conv1(h)))
        for k in range(1, backbone.num_stages + 1):
            h = at(f'backbone.layer{k}', getattr(backbone, f'layer{k}')(h))
        return backbone.relu_final(backbone.bn_final(h))
    h = at('backbone.relu', backbone.relu(backbone.norm1(backbone.conv1(h))))
    if type(backbone).__name__ == 'ResNet':
        h = at('backbone.maxpool', backbone.maxpool(h))
    for k in range(1, len(backbone.res_layers) + 1):
        h = at(f'backbone.layer{k}', getattr(backbone, f'layer{k}')(h))
    return h


def ref_loss(model, x, layer, op, y_mix):
    """Soft-label CE (the configs' loss) of the written-out forward."""
    feat = ref_backbone(model.backbone, x, layer, op).mean((2, 3))
    logits = feat @ model.head.fc.weight.T + model.head.fc.bias
    return -(y_mix * F.log_softmax(logits, 1)).sum(1).mean()


def ref_mixup(h, index, lam):
    """Manifold Mixup's mixup_process: lam * h + (1 - lam) * h[partner], per sample."""
    return torch.stack([lam * h[i] + (1 - lam) * h[j] for i, j in enumerate(index.tolist())])


def ref_cutmix_box(hw, lam0, cy, cx):
    """CutMix's rand_bbox (Yun et al.): side sqrt(1 - lam0), centre (cy, cx), clipped; and the
    share outside the box."""
    h, w = hw
    cut_h, cut_w = int(h * math.sqrt(1 - lam0)), int(w * math.sqrt(1 - lam0))
    y1, y2 = min(max(cy - cut_h // 2, 0), h), min(max(cy + cut_h // 2, 0), h)
    x1, x2 = min(max(cx - cut_w // 2, 0), w), min(max(cx + cut_w // 2, 0), w)
    return (y1, y2, x1, x2), 1 - (y2 - y1) * (x2 - x1) / (h * w)


def ref_cutmix(h, index, box):
    y1, y2, x1, x2 = box
    out = h.clone()
    for i, j in enumerate(index.tolist()):
        out[i, :, y1:y2, x1:x2] = h[j, :, y1:y2, x1:x2]
    return out


def ref_pono_moex(h, index, eps):
    """MoEx with PONO (Li et al.): at every sample and position, the C channels normalised by
    their own mean and std (unbiased variance + eps), then given the partner's (numpy)."""
    a = h.detach().double().numpy()
    mean = a.mean(1, keepdims=True)
    std = np.sqrt(a.var(1, ddof=1, keepdims=True) + eps)
    out = np.stack([(a[i] - mean[i]) / std[i] * std[j] + mean[j]
                    for i, j in enumerate(index.tolist())])
    return torch.as_tensor(out, dtype=h.dtype)


def rm_labels(y, index, lam):
    return torch.stack([lam * y[i] + (1 - lam) * y[j] for i, j in enumerate(index.tolist())])


def run_step(model, x, labels, index, layer_of_op):
    """model.loss with the partner index and each op's layer chosen."""
    ops = model.feature_mixes
    model.sample_plan = lambda n, device: (index, [(op, layer_of_op[i])
                                                    for i, op in enumerate(ops)])
    k = model.head.num_classes
    data_samples = [DataSample().set_gt_label(v).set_gt_score(F.one_hot(torch.tensor(v), k)
                                                              .float()) for v in labels]
    loss = model.loss(x, data_samples)['loss']
    return loss, torch.stack([s.gt_score for s in data_samples])


FMNIST = 'resnet18-w16_1xb128_fashion-mnist_{}.py'
FM_INDEX = torch.tensor([2, 0, 3, 1])
FM_LABELS = [0, 1, 2, 1]


def fm_batch(c=1, side=28):
    return torch.randn(4, c, side, side, generator=torch.Generator().manual_seed(1))


def onehot10(labels):
    return F.one_hot(torch.as_tensor(labels), 10).float()


@pytest.mark.parametrize('layer', ['input', 'backbone.layer1', 'backbone.layer2'])
def test_manifold_mixup_config_equals_the_authors_mixup_process(monkeypatch, layer):
    model = config_model(FMNIST.format('manifold-mixup'))
    x, lam = fm_batch(), 0.3141
    draws = Draws(monkeypatch, beta=[lam])
    loss, scores = run_step(model, x, FM_LABELS, FM_INDEX, [layer])
    assert draws.used_up()
    y = rm_labels(onehot10(FM_LABELS), FM_INDEX, lam)
    torch.testing.assert_close(scores, y, rtol=0, atol=1e-7)
    expect = ref_loss(model, x, layer, lambda h: ref_mixup(h, FM_INDEX, lam), y)
    torch.testing.assert_close(loss, expect, rtol=1e-5, atol=1e-6)


# (lam0, cy, cx) on the drawn map: a box clipped at the top-left corner, an interior
# asymmetric one, an empty box (lam0 = 1) and the full map (lam0 = 0 at the centre)
CUTMIX_DRAWS = {'corner': (0.55, 1, 2), 'interior': (0.8, 9, 5), 'empty': (1.0, 3, 3),
                'full': (0.0, None, None)}


@pytest.mark.parametrize('layer', ['input', 'backbone.layer1', 'backbone.layer2'])
@pytest.mark.parametrize('box', list(CUTMIX_DRAWS))
def test_feature_cutmix_config_equals_cutmix_at_the_drawn_layer(monkeypatch, layer, box):
    model = config_model(FMNIST.format('feature-cutmix'))
    x = fm_batch()
    hw = {'input': 28, 'backbone.layer1': 28, 'backbone.layer2': 14}[layer]
    lam0, cy, cx = CUTMIX_DRAWS[box]
    if box == 'full':
        cy = cx = hw // 2
    draws = Draws(monkeypatch, beta=[lam0], randint=[cy, cx])
    loss, scores = run_step(model, x, FM_LABELS, FM_INDEX, [layer])
    assert draws.used_up()
    (y1, y2, x1, x2), lam = ref_cutmix_box((hw, hw), lam0, cy, cx)
    area = (y2 - y1) * (x2 - x1)
    assert {'empty': area == 0, 'full': area == hw * hw}.get(box, 0 < area < hw * hw)
    assert model.last_mixes[0][2] == pytest.approx(lam)
    y = rm_labels(onehot10(FM_LABELS), FM_INDEX, lam)
    torch.testing.assert_close(scores, y, rtol=0, atol=1e-7)
    expect = ref_loss(model, x, layer, lambda h: ref_cutmix(h, FM_INDEX, (y1, y2, x1, x2)), y)
    torch.testing.assert_close(loss, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('applied', [True, False])
def test_moex_config_equals_pono_moment_exchange(monkeypatch, applied):
    model = config_model(FMNIST.format('moex'))  # stem output, lam 0.5, prob 0.25
    op, = model.feature_mixes
    assert (op.layers, op.lam, op.prob) == (('backbone.relu', ), 0.5, 0.25)
    x = fm_batch()
    draws = Draws(monkeypatch, rand=[0.2 if applied else 0.3])  # prob 0.25
    loss, scores = run_step(model, x, FM_LABELS, FM_INDEX, ['backbone.relu'])
    assert draws.used_up()
    lam = 0.5 if applied else 1.
    y = rm_labels(onehot10(FM_LABELS), FM_INDEX, lam)
    torch.testing.assert_close(scores, y, rtol=0, atol=1e-7)
    moex = (lambda h: ref_pono_moex(h, FM_INDEX, 1e-5)) if applied else (lambda h: h)
    expect = ref_loss(model, x, 'backbone.relu', moex, y)
    torch.testing.assert_close(loss, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('box,moex', [('interior', True), ('empty', True), ('full', False),
                                      ('corner', False)])
def test_cutmix_moex_config_equals_the_authors_composition(monkeypatch, box, moex):
    model = config_model(FMNIST.format('cutmix-moex'))
    x = fm_batch()
    lam0, cy, cx = CUTMIX_DRAWS[box]
    if box == 'full':
        cy = cx = 14
    draws = Draws(monkeypatch, beta=[lam0], randint=[cy, cx], rand=[0.1 if moex else 0.5])
    loss, scores = run_step(model, x, FM_LABELS, FM_INDEX, ['input', 'backbone.relu'])
    assert draws.used_up()
    box_, lam_c = ref_cutmix_box((28, 28), lam0, cy, cx)
    lam_m = 0.9 if moex else 1.
    # main_moex_cutmix.py: a lc lm + b ((1 - lc) lm + lc (1 - lm)) + c (1 - lc)(1 - lm),
    # b = partner, c = partner's partner
    y = onehot10(FM_LABELS)
    yb, yc = y[FM_INDEX], y[FM_INDEX][FM_INDEX]
    expect_y = (y * lam_c * lam_m + yb * ((1 - lam_c) * lam_m + lam_c * (1 - lam_m)) +
                yc * (1 - lam_c) * (1 - lam_m))
    torch.testing.assert_close(scores, expect_y, rtol=0, atol=1e-6)
    x_cut = ref_cutmix(x, FM_INDEX, box_)
    op = (lambda h: ref_pono_moex(h, FM_INDEX, 1e-5)) if moex else (lambda h: h)
    expect = ref_loss(model, x_cut, 'backbone.relu', op, expect_y)
    torch.testing.assert_close(loss, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,layer,lam,backbone', [
    ('resnet50_8xb32_in1k_moex.py', 'backbone.maxpool', 0.9, {}),
    # PyramidNet-200's layer and settings on a 20-layer PyramidNet (the same module names)
    ('pyramidnet200-a240_2xb32_cifar10_moex.py', 'backbone.bn1', 0.5,
     dict(depth=20, alpha=24, bottleneck=False)),
])
def test_moex_configs_exchange_at_their_layer(monkeypatch, name, layer, lam, backbone):
    model = config_model(name, head=dict(in_channels=40) if backbone else None, **backbone)
    op, = model.feature_mixes
    assert op.layers == (layer, ) and op.lam == lam
    x = fm_batch(3, 32)
    Draws(monkeypatch, rand=[0.])  # applied (prob 1, or a draw below 0.25)
    labels = [0, 1, 2, 1]
    # the map the layer gives and the one the rest of the network receives
    nxt = model.backbone.layer1
    seen = {}
    hooks = [model.get_submodule(layer).register_forward_hook(
        lambda m, a, out: seen.setdefault('clean', out.detach().clone())),
        nxt.register_forward_pre_hook(lambda m, a: seen.setdefault('mixed', a[0].detach()))]
    loss, scores = run_step(model, x, labels, FM_INDEX, [layer])
    for h in hooks:
        h.remove()
    torch.testing.assert_close(seen['mixed'], ref_pono_moex(seen['clean'], FM_INDEX, 1e-5),
                               rtol=1e-5, atol=1e-5)
    num_classes = scores.size(1)
    y = rm_labels(F.one_hot(torch.tensor(labels), num_classes).float(), FM_INDEX, lam)
    torch.testing.assert_close(scores, y, rtol=0, atol=1e-7)
    expect = ref_loss(model, x, layer, lambda h: ref_pono_moex(h, FM_INDEX, 1e-5), y)
    # (50 layers in float32 after a float64 reference: the loss agrees to ~3e-5)
    torch.testing.assert_close(loss, expect, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('name', [FMNIST.format('manifold-mixup'), FMNIST.format('puzzlemix')])
def test_label_mixing_configs_refuse_bad_labels_before_the_first_step(name):
    from mmengine.optim import OptimWrapper

    from mmrm.utils import load_config, model_config
    cfg = model_config(load_config(f'configs/rm/{name}'))
    with pytest.raises(ValueError, match=r'data_preprocessor.num_classes=12 but the classifier '
                                         r'has 10 classes'):
        MODELS.build(dict(cfg, data_preprocessor=dict(cfg['data_preprocessor'],
                                                      num_classes=12)))
    model = MODELS.build(cfg)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = [p.clone() for p in model.parameters()]
    for labels, bad in (([1, 10], '10'), ([-1, 3], '-1')):
        data = dict(inputs=torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8),
                    data_samples=[DataSample().set_gt_label(v) for v in labels])
        with pytest.raises(ValueError, match=rf'gt_label {bad} of sample \d of the batch is '
                                             r'outside the allowed 0 \.\. 9'):
            model.train_step(data, optim)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
