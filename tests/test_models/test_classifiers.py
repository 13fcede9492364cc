"""RMClassifier, RMDataPreprocessor and RoIConsistencyHead: the RoI box, the loss against a
hand computation, history bookkeeping, deploy export and configuration errors."""
import copy
import math
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmrm  # noqa: F401
from mmrm.models import RMClassifier, RoIConsistencyHead

NUM_CLASSES = 5


def tiny_model_cfg(**overrides):
    cfg = dict(
        type='RMClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64,
                  loss=dict(type='CrossEntropyLoss', use_soft=True)),
        roi_head=dict(type='RoIConsistencyHead', omega=0.1),
        train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)),
        data_preprocessor=dict(mean=[0., 0., 0.], std=[1., 1., 1.], num_classes=NUM_CLASSES))
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            value = dict(value)
            cfg[key] = value if value.pop('_replace', False) else {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def data_batch(n=4, hw=(32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(n, 3, *hw, generator=g) * 255)
    labels = torch.randint(0, NUM_CLASSES, (n, ), generator=g)
    samples = [DataSample().set_gt_label(int(lbl)) for lbl in labels]
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(autouse=True)
def no_epoch_info():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = MODELS.build(tiny_model_cfg())
    m.init_weights()
    return m.train()


def position_map(h, w, stride):
    """Feature map whose channel 0 is the x and channel 1 the y input-pixel coordinate of each
    cell centre: bilinear sampling of a linear function is exact, so a 1x1 RoIAlign returns the
    centre of the box it really pooled."""
    xs = (torch.arange(w) + 0.5) * stride
    ys = (torch.arange(h) + 0.5) * stride
    return torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)])[None]


@pytest.mark.parametrize('backend', ['mmcv', 'torchvision'])
@pytest.mark.parametrize('box', [(8, 4, 36, 20), (4, 12, 20, 28), (12, 8, 40, 12)])
def test_roi_head_pools_exactly_the_pasted_box(box, backend):
    head = RoIConsistencyHead(num_classes=3, in_channels=2, roi_backend=backend)
    feat = position_map(8, 12, stride=4)  # input 32 (H) x 48 (W)
    pooled = head.pool(feat, torch.tensor([box], dtype=torch.float32), (32, 48))
    x1, y1, x2, y2 = box
    assert torch.allclose(pooled, torch.tensor([[(x1 + x2) / 2, (y1 + y2) / 2]]), atol=1e-5)
    transposed = torch.tensor([[y1, x1, y2, x2]], dtype=torch.float32)
    assert not torch.allclose(head.pool(feat, transposed, (32, 48)), pooled, atol=1e-3)


def test_roi_backends_agree_in_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    # a channels-last (strided) map, as PVTv2's NLC->NCHW view gives
    feat = torch.randn(3, 7, 5, 6, generator=g).permute(0, 3, 1, 2)  # (3, 6, 7, 5)
    boxes = torch.tensor([[0., 0., 20., 28.], [3., 5., 11., 9.], [0., 0., 0., 0.]])
    outs, grads = [], []
    for backend in ('mmcv', 'torchvision'):
        head = RoIConsistencyHead(num_classes=3, in_channels=6, roi_backend=backend)
        f = feat.detach().clone().requires_grad_()
        pooled = head.pool(f, boxes, (28, 20))
        (pooled * torch.arange(1., 7.)).sum().backward()
        outs.append(pooled)
        grads.append(f.grad)
    assert outs[0].abs().sum() > 0 and grads[0].abs().sum() > 0
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-6)


def test_mmcv_backend_without_compiled_ops_names_the_alternative(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmcv.ops', None)  # as with mmcv-lite
    with pytest.raises(ImportError, match="roi_backend='torchvision'"):
        MODELS.build(tiny_model_cfg())
    model = MODELS.build(tiny_model_cfg(roi_head=dict(roi_backend='torchvision')))
    data = model.data_preprocessor(data_batch(), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss', 'loss_rm'} and all(
        torch.isfinite(v) for v in losses.values())


def test_mmcv_without_a_kernel_for_the_device_names_the_alternative():
    # mmcv compiled without CUDA answers a CUDA map with "implementation ... not found"; the
    # meta device takes the same path on this CPU-only machine
    head = RoIConsistencyHead(num_classes=3, in_channels=2)
    feat = torch.zeros(1, 2, 4, 4, device='meta')
    with pytest.raises(RuntimeError, match="no RoIAlign kernel for meta; set "
                       "roi_head.roi_backend='torchvision'"):
        head.pool(feat, torch.zeros(1, 4, device='meta'), (16, 16))


def test_preprocessor_box_is_where_history_was_pasted(model):
    pre = model.data_preprocessor
    pre.rm_augment.sample_box = lambda h, w: (6, 2, 22, 10)
    first = pre(data_batch(seed=1), True)
    assert all(float(s.rm_lam) == 0 and s.rm_box.tolist() == [0, 0, 0, 0]
               for s in first['data_samples'])
    hist = first['inputs'].clone()
    second = pre(data_batch(seed=2), True)
    for s in second['data_samples']:
        assert s.rm_box.tolist() == [6, 2, 22, 10]
        assert float(s.rm_lam) == pytest.approx(16 * 8 / 1024)
    x1, y1, x2, y2 = second['data_samples'][0].rm_box.long().tolist()
    assert torch.equal(second['inputs'][..., y1:y2, x1:x2],
                       F.interpolate(hist, size=(y2 - y1, x2 - x1), mode='nearest'))
    # and the RoI head pools that very region of a position-coded map of the same input
    boxes = torch.stack([s.rm_box for s in second['data_samples']])
    pooled = model.roi_head.__class__(3, 2).pool(position_map(4, 4, 8).expand(4, -1, -1, -1),
                                                 boxes, (32, 32))
    assert torch.allclose(pooled, torch.tensor([[14., 6.]]).expand(4, 2), atol=1e-5)
    # eval never mixes and never writes RM fields
    evald = pre(data_batch(seed=3), False)
    assert 'rm_box' not in evald['data_samples'][0]


def soft_ce(logits, target):
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


def kl(p_logits, q_logits):
    p = F.softmax(p_logits, 1)
    return (p * (F.log_softmax(p_logits, 1) - F.log_softmax(q_logits, 1))).sum(1)


def test_loss_equals_hand_computation_over_two_steps(model):
    omega = model.roi_head.omega
    pre = model.data_preprocessor
    pre.rm_augment.sample_box = lambda h, w: (4, 8, 28, 24)

    d1 = pre(data_batch(seed=1), True)
    losses1 = model.loss(d1['inputs'], d1['data_samples'])
    logits1 = model(d1['inputs'], mode='tensor')
    assert losses1['loss_rm'].item() == 0.  # first step: nothing pasted, weight 0
    y1 = torch.stack([s.gt_score for s in d1['data_samples']])
    assert torch.allclose(losses1['loss'], soft_ce(logits1, y1), atol=1e-6)
    assert torch.allclose(model._hist_logits, logits1, atol=1e-6)

    d2 = pre(data_batch(seed=2), True)
    losses2 = model.loss(d2['inputs'], d2['data_samples'])
    lam = 24 * 16 / 1024
    labels2 = F.one_hot(torch.stack([s.gt_label for s in d2['data_samples']]).flatten(),
                        NUM_CLASSES).float()
    y2 = lam * y1 + (1 - lam) * labels2  # Eq. (1)
    logits2 = model(d2['inputs'], mode='tensor')
    assert torch.allclose(losses2['loss'], soft_ce(logits2, y2), atol=1e-6)
    # Eq. (4) with torchvision's RoIAlign as an independent implementation
    fmap = model.backbone(d2['inputs'])[-1]
    boxes = [torch.tensor([[4., 8., 28., 24.]])] * 4
    pooled = torchvision.ops.roi_align(fmap, boxes, 1, spatial_scale=fmap.size(-1) / 32,
                                       sampling_ratio=-1, aligned=True).flatten(1)
    roi_logits = pooled @ model.roi_head.fc.weight.T + model.roi_head.fc.bias
    expect = omega * lam * kl(logits1, roi_logits).mean()  # Eq. (5)
    assert expect.item() > 0
    assert torch.allclose(losses2['loss_rm'], expect, rtol=1e-5, atol=1e-7)


def test_kl_term_by_hand_numbers():
    head = RoIConsistencyHead(num_classes=3, in_channels=2, omega=0.5)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]))
        head.fc.bias.copy_(torch.tensor([0., 0.5, -1.]))
    feat = torch.stack([torch.full((2, 3, 3), 0.2), torch.full((2, 3, 3), -0.4)], 1)
    feat[1] *= 2
    z = head(feat, torch.tensor([[0., 0., 8., 8.], [4., 4., 12., 12.]]), (12, 12))
    p_h = torch.tensor([[2., 0., -1.], [0., 1., 0.]])
    lam = torch.tensor([0.25, 0.25])
    got = head.loss(z, p_h, lam).item()

    def softmax(v):
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    total = 0.
    for (a, b), ph in zip([(0.2, -0.4), (0.4, -0.8)], p_h.tolist()):
        q = softmax([a, b + 0.5, a + b - 1.])
        p = softmax(ph)
        total += 0.25 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    assert got == pytest.approx(0.5 * total / 2, rel=1e-5)


def test_first_step_gives_every_parameter_a_gradient(model):
    d = model.data_preprocessor(data_batch(), True)
    losses = model.loss(d['inputs'], d['data_samples'])
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert model.roi_head.fc.weight.grad.abs().sum() == 0  # weighted 0, but in the graph


def test_eval_in_the_middle_leaves_history_untouched_and_nothing_in_state_dict(model):
    keys_before = set(model.state_dict())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    for seed in range(2):
        model.train_step(data_batch(seed=seed), optim)
    hist_x = model.data_preprocessor.rm_augment.history_inputs
    hist_p = model._hist_logits
    snapshot = (hist_x.clone(), hist_p.clone())
    model.eval()
    preds = model.val_step(data_batch(n=6, seed=9))
    assert len(preds) == 6 and preds[0].pred_score.shape == (NUM_CLASSES, )
    model.predict(torch.rand(3, 3, 32, 32))
    model.train()
    assert model.data_preprocessor.rm_augment.history_inputs is hist_x
    assert model._hist_logits is hist_p
    assert torch.equal(hist_x, snapshot[0]) and torch.equal(hist_p, snapshot[1])
    assert set(model.state_dict()) == keys_before
    assert model.data_preprocessor.state_dict() == {}
    assert not any('hist' in k for k in keys_before)
    assert keys_before == {k for k, _ in model.named_parameters()} | \
        {k for k, _ in model.named_buffers() if not k.startswith('data_preprocessor.')}


def test_short_batch_and_larger_batch_keep_heads_aligned(model):
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    model.data_preprocessor.rm_augment.sample_box = lambda h, w: (0, 0, 16, 16)
    model.train_step(data_batch(n=4, seed=1), optim)
    p4 = model._hist_logits.clone()
    # a short batch: pastes the first 2 history samples, consistency against p_h[:2]
    d = model.data_preprocessor(data_batch(n=2, seed=2), True)
    assert float(d['data_samples'][0].rm_lam) == 0.25
    assert torch.equal(model._history_target(torch.zeros(2, NUM_CLASSES)), p4[:2])
    losses = model.loss(d['inputs'], d['data_samples'])
    assert losses['loss_rm'].item() > 0
    assert model._hist_logits.shape == (2, NUM_CLASSES)
    # a batch larger than the history: nothing pasted, the consistency term weighs 0
    d = model.data_preprocessor(data_batch(n=4, seed=3), True)
    assert float(d['data_samples'][0].rm_lam) == 0
    assert model.loss(d['inputs'], d['data_samples'])['loss_rm'].item() == 0


def test_share_fc_reuses_the_main_fc_and_matches_baseline_params():
    rm = MODELS.build(tiny_model_cfg(roi_head=dict(share_fc=True)))
    base_cfg = tiny_model_cfg()
    for k in ('roi_head', ):
        base_cfg.pop(k)
    base_cfg.update(type='ImageClassifier', train_cfg=dict(augments=dict(type='CutMix', alpha=1.)),
                    data_preprocessor=dict(num_classes=NUM_CLASSES))
    base = MODELS.build(base_cfg)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(rm) == count(base)
    unshared = MODELS.build(tiny_model_cfg())
    assert count(unshared) == count(base) + 64 * NUM_CLASSES + NUM_CLASSES
    d = rm.data_preprocessor(data_batch(), True)
    losses = rm.loss(d['inputs'], d['data_samples'])
    sum(losses.values()).backward()
    assert rm.head.fc.weight.grad is not None


def test_amp_bf16_step_on_cpu_is_finite(model):
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    for seed in range(3):
        data = model.data_preprocessor(data_batch(seed=seed), True)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            losses = model.loss(data['inputs'], data['data_samples'])
        assert all(torch.isfinite(v) for v in losses.values())
        optim.update_params(sum(losses.values()))
    assert model._hist_logits.dtype == torch.bfloat16
    assert float(data['data_samples'][0].rm_lam) >= 0


BAD_CONFIGS = [
    (dict(train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.))), 'alpha'),
    (dict(train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=1.2))), 'alpha'),
    (dict(train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment',
                                       interpolation='area'))), 'interpolation'),
    (dict(roi_head=dict(omega=-0.1)), 'omega'),
    (dict(roi_head=dict(in_channels=32)), 'in_channels'),
    (dict(roi_head=dict(num_classes=10)), 'num_classes'),
    (dict(data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=NUM_CLASSES)),
     'RMDataPreprocessor'),
    (dict(train_cfg=dict(augments=dict(type='CutMix', alpha=1.))), 'RecursiveMixBatchAugment'),
    (dict(train_cfg=dict(augments=[dict(type='RecursiveMixBatchAugment'),
                                   dict(type='Mixup', alpha=1.)])), 'exactly one'),
    (dict(train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment'), probs=[0.5])), 'probs'),
    (dict(train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', use_history=False))),
     'omega=0'),
    (dict(neck=dict(type='LinearNeck', in_channels=64, out_channels=32, gap_dim=2, _replace=True),
          head=dict(in_channels=32), roi_head=dict(in_channels=64, share_fc=True)), 'share_fc'),
    (dict(head=dict(type='StackedLinearClsHead', num_classes=NUM_CLASSES, in_channels=64,
                    mid_channels=[16], _replace=True)), 'linear `fc`'),
    (dict(roi_head=dict(share_fc='yes')), 'share_fc'),
    (dict(roi_head=dict(roi_backend='detectron2')), "roi_backend must be one of \\('mmcv', "
     "'torchvision'\\)"),
]


@pytest.mark.parametrize('overrides,match', BAD_CONFIGS)
def test_bad_configuration_is_refused_at_build_time(overrides, match):
    cfg = tiny_model_cfg(**copy.deepcopy(overrides))
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_rm_preprocessor_in_a_plain_classifier_is_refused():
    cfg = tiny_model_cfg(type='ImageClassifier',
                         data_preprocessor=dict(type='RMDataPreprocessor', num_classes=5))
    cfg.pop('roi_head')
    model = MODELS.build(cfg)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    with pytest.raises(RuntimeError, match="model.type='RMClassifier'"):
        model.train_step(data_batch(), optim)


def test_plain_classifier_with_rm_augment_is_the_history_only_ablation():
    cfg = tiny_model_cfg(type='ImageClassifier', data_preprocessor=dict(num_classes=5))
    cfg.pop('roi_head')
    model = MODELS.build(cfg)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    aug = model.data_preprocessor.batch_augments.augments[0]
    aug.sample_box = lambda h, w: (0, 0, 16, 16)
    for seed in range(2):
        log = model.train_step(data_batch(seed=seed), optim)
    assert aug.last_lam == 0.25 and set(log) == {'loss'}


def test_model_type_is_registered_and_deploy_drops_only_roi_head(model):
    assert MODELS.get('RMClassifier') is RMClassifier
    rm_only = [k for k in model.state_dict() if k.startswith('roi_head.')]
    assert rm_only == ['roi_head.fc.weight', 'roi_head.fc.bias']
