"""RMClassifier: the loss against a hand computation and against the per-sample reference path,
history bookkeeping, edge cases, deploy export and configuration errors (the RoI head and the
data preprocessor have their own test modules; other architectures: test_architectures.py)."""
import copy
import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmrm  # noqa: F401
from mmrm.models import RMClassifier

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
    losses1 = model.loss(d1['inputs'], d1['data_samples'], rm_mix=d1['rm_mix'])
    logits1 = model(d1['inputs'], mode='tensor')
    assert losses1['loss_rm'].item() == 0.  # first step: nothing pasted, weight 0
    y1 = d1['rm_mix'].scores
    assert torch.allclose(losses1['loss_cls'], soft_ce(logits1, y1), atol=1e-6)
    assert torch.allclose(model._hist_logits, logits1, atol=1e-6)

    d2 = pre(data_batch(seed=2), True)
    losses2 = model.loss(**d2)
    lam = 24 * 16 / 1024
    labels2 = F.one_hot(torch.stack([s.gt_label for s in d2['data_samples']]).flatten(),
                        NUM_CLASSES).float()
    y2 = lam * y1 + (1 - lam) * labels2  # Eq. (1)
    logits2 = model(d2['inputs'], mode='tensor')
    assert torch.allclose(losses2['loss_cls'], soft_ce(logits2, y2), atol=1e-6)
    # Eq. (4) with torchvision's RoIAlign as an independent implementation
    fmap = model.backbone(d2['inputs'])[-1]
    boxes = [torch.tensor([[4., 8., 28., 24.]])] * 4
    pooled = torchvision.ops.roi_align(fmap, boxes, 1, spatial_scale=fmap.size(-1) / 32,
                                       sampling_ratio=-1, aligned=True).flatten(1)
    roi_logits = pooled @ model.roi_head.fc.weight.T + model.roi_head.fc.bias
    expect = omega * lam * kl(logits1, roi_logits).mean()  # Eq. (5)
    assert expect.item() > 0
    assert torch.allclose(losses2['loss_rm'], expect, rtol=1e-5, atol=1e-7)


def nearest_by_index(src, out_h, out_w):
    """Nearest resize written independently of F.interpolate: src index = floor(dst * in / out)."""
    in_h, in_w = src.shape[-2:]
    rows = (torch.arange(out_h) * in_h) // out_h
    cols = (torch.arange(out_w) * in_w) // out_w
    return src[..., rows[:, None], cols[None, :]]


def test_losses_and_gradients_equal_an_independent_reference_path():
    """Same inputs, same box, three steps: the batch-level path (RMDataPreprocessor's one-hot
    scatter and paste, RMMix, ``loss_module`` on the batch's scores, matmul RoI pooling,
    host-float lambda) against a reference written here: the history pasted by index
    arithmetic, labels mixed by hand, soft CE, torchvision's RoIAlign, KL per sample."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    model.init_weights()
    model.train()
    box = (3, 5, 27, 21)  # x1, y1, x2, y2: 24 wide, 16 high on 32 x 32
    model.data_preprocessor.rm_augment.sample_box = lambda h, w: box
    hist_x = hist_y = hist_logits = None
    for step in range(3):
        data = data_batch(seed=10 + step)
        new = model.data_preprocessor(data_batch(seed=10 + step), True)
        # the reference mix (mean 0, std 1: the inputs as floats)
        ref_x = data['inputs'].float().clone()
        ref_y = F.one_hot(torch.cat([s.gt_label for s in data['data_samples']]),
                          NUM_CLASSES).float()
        lam = 0.
        if hist_x is not None:
            x1, y1, x2, y2 = box
            ref_x[..., y1:y2, x1:x2] = nearest_by_index(hist_x, y2 - y1, x2 - x1)
            lam = (x2 - x1) * (y2 - y1) / (32 * 32)
            ref_y = lam * hist_y + (1 - lam) * ref_y
        hist_x, hist_y = ref_x, ref_y
        assert torch.equal(new['inputs'], ref_x)
        torch.testing.assert_close(new['rm_mix'].scores, ref_y, rtol=0, atol=1e-7)
        assert new['rm_mix'].lam == pytest.approx(lam)

        model.zero_grad()
        losses = model.loss(**new)
        sum(losses.values()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}

        model.zero_grad()
        feats = model.backbone(ref_x)
        logits = model.head(model.neck(feats))
        ref_loss = soft_ce(logits, ref_y)
        boxes = torch.tensor([box if lam else (0, 0, 0, 0)] * 4, dtype=torch.float32)
        rois = torch.cat([torch.arange(4.)[:, None], boxes], 1)
        pooled = torchvision.ops.roi_align(feats[-1], rois, 1, feats[-1].size(-1) / 32, 0,
                                           True).flatten(1)
        z = model.roi_head.fc(pooled)
        p_h = hist_logits if hist_logits is not None else torch.zeros_like(logits)
        lam_vec = torch.full((4, ), lam)
        ref_rm = model.roi_head.omega * (lam_vec * kl(p_h, z)).mean()
        (ref_loss + ref_rm).backward()
        torch.testing.assert_close(losses['loss_cls'], ref_loss, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(losses['loss_rm'], ref_rm, rtol=1e-5, atol=1e-8)
        for n, p in model.named_parameters():
            torch.testing.assert_close(grads[n], p.grad, rtol=1e-4, atol=1e-7, msg=n)
        hist_logits = logits.detach()
        model._hist_logits = hist_logits
    assert lam > 0


def test_first_step_gives_every_parameter_a_gradient(model):
    d = model.data_preprocessor(data_batch(), True)
    losses = model.loss(**d)
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
    assert d['rm_mix'].lam == 0.25
    assert torch.equal(model._history_target(torch.zeros(2, NUM_CLASSES)), p4[:2])
    losses = model.loss(**d)
    assert losses['loss_rm'].item() > 0
    assert model._hist_logits.shape == (2, NUM_CLASSES)
    # a batch larger than the history: nothing pasted, the consistency term weighs 0
    d = model.data_preprocessor(data_batch(n=4, seed=3), True)
    assert d['rm_mix'].lam == 0
    assert model.loss(**d)['loss_rm'].item() == 0


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
    rm.data_preprocessor.rm_augment.sample_box = lambda h, w: (0, 0, 16, 16)
    for seed in range(2):
        d = rm.data_preprocessor(data_batch(seed=seed), True)
        rm.zero_grad()
        losses = rm.loss(**d)
    assert losses['loss_rm'].item() > 0
    losses['loss_rm'].backward()  # the consistency term alone reaches the shared fc
    assert rm.head.fc.weight.grad.abs().sum() > 0


def test_shared_fc_on_the_whole_image_box_is_the_main_classifier():
    """With share_fc, H' IS the main classifier: the 1x1 RoIAlign of the whole-image box is the
    global average the main path pools, so the RoI logits equal the main logits (what the
    build-time check keeps true by refusing heads with other weighted layers)."""
    torch.manual_seed(0)
    rm = MODELS.build(tiny_model_cfg(roi_head=dict(share_fc=True))).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad(), rm.feature_tap.capture((32, 32)) as found:
        logits = rm.head(rm.extract_feat(x))
    roi = rm.roi_head(found.map, (0, 0, 32, 32), (32, 32), fc=rm.head.fc,
                      post_pool=found.post_pool)
    torch.testing.assert_close(roi, logits, rtol=1e-5, atol=1e-6)


def test_amp_bf16_losses_follow_float32_and_train(model):
    """Under bf16 autocast (CPU AMP) both terms follow the float32 ones on the same batches and
    history (the RoI pooling, H' and the fused KL run in low precision or float32 as autocast
    decides), the consistency term is live once a box is pasted, and an update moves H'."""
    model32 = copy.deepcopy(model)
    model.data_preprocessor.rm_augment.sample_box = lambda h, w: (4, 8, 28, 24)
    optim = OptimWrapper(torch.optim.SGD(model.roi_head.parameters(), lr=1.))
    for seed in range(3):
        data = model.data_preprocessor(data_batch(seed=seed), True)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            losses = model.loss(**data)
        ref = model32.loss(**data)
        assert losses['loss_rm'].dtype == torch.float32
        for key in ('loss_cls', 'loss_rm'):
            torch.testing.assert_close(losses[key].float(), ref[key], rtol=3e-2, atol=1e-6)
        assert (losses['loss_rm'].item() > 0) == (seed > 0)
    assert model._hist_logits.dtype == torch.bfloat16
    before = model.roi_head.fc.weight.detach().clone()
    optim.update_params(losses['loss_rm'])
    assert not torch.equal(model.roi_head.fc.weight, before)


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
                    mid_channels=[16], _replace=True), roi_head=dict(share_fc=True)),
     'share_fc=True needs the main classifier \\(head.layers.1.fc\\) to take'),
    (dict(neck=dict(type='LinearNeck', in_channels=64, out_channels=32, gap_dim=2, _replace=True),
          head=dict(in_channels=32)), 'set roi_head.in_channels'),
    # the shared layer takes the pooled width, but the head normalises / transforms first:
    # H' would not be the main classifier (the whole-image box would not give its logits)
    (dict(head=dict(type='LeViTClsHead', num_classes=NUM_CLASSES, in_channels=64,
                    distillation=False, _replace=True), roi_head=dict(share_fc=True)),
     'share_fc=True needs the main classifier \\(head.head.linear\\) to be the only layer '
     'with weights in the head, but head.head.bn'),
    (dict(head=dict(type='StackedLinearClsHead', num_classes=NUM_CLASSES, in_channels=64,
                    mid_channels=[64], _replace=True), roi_head=dict(share_fc=True)),
     'but head.layers.0.fc'),
    (dict(head=dict(cal_acc=True)), 'cal_acc'),
    (dict(head=dict(type='MultiLabelLinearClsHead', num_classes=NUM_CLASSES, in_channels=64,
                    _replace=True)), 'does not compute its loss as ClsHead'),
    # ArcFace adds its margin only inside its own loss(): the RM path would train it without
    (dict(head=dict(type='ArcFaceClsHead', num_classes=NUM_CLASSES, in_channels=64,
                    _replace=True)), 'ArcFaceClsHead does not compute its loss as ClsHead'),
    (dict(head=dict(type='ConformerHead', num_classes=NUM_CLASSES, in_channels=[64, 64],
                    _replace=True)), 'ConformerHead does not compute its loss as ClsHead'),
    # LeViT's distillation head raises in training mode: refused when built, not at step 1
    (dict(head=dict(type='LeViTClsHead', num_classes=NUM_CLASSES, in_channels=64,
                    distillation=True, _replace=True)), 'distillation=False'),
    (dict(backbone=dict(type='RMTestMLP', _replace=True), neck=None,
          head=dict(in_channels=16)), 'cannot find a spatial feature map before the '
     'classifier of RMTestMLP'),
    (dict(roi_head=dict(share_fc='yes')), 'share_fc'),
    (dict(roi_head=dict(roi_backend='detectron2')), "roi_backend must be one of \\('matmul', "
     "'mmcv', 'torchvision'\\)"),
]


@MODELS.register_module(force=True)
class RMTestMLP(torch.nn.Module):
    """An MLP-only backbone: no spatial map anywhere (RM must refuse it at build time)."""

    def __init__(self):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(16))

    def forward(self, x):
        return (self.mlp(x), )


@pytest.mark.parametrize('overrides,match', BAD_CONFIGS)
def test_bad_configuration_is_refused_at_build_time(overrides, match):
    cfg = tiny_model_cfg(**copy.deepcopy(overrides))
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


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


def gem_model():
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(neck=dict(type='GeneralizedMeanPooling', p=3.)))
    model.init_weights()
    return model.train()


def test_gem_pooling_the_box_is_the_main_paths_generalised_mean():
    """GeM main path: the RoI branch pools the box as a generalised mean, so the whole box is
    the neck's output and a partial box is (mean over its cells of max(x, eps)^p)^(1/p)."""
    model = gem_model()
    with torch.no_grad():
        model.neck.p.fill_(2.5)  # a trained p, not the initial 3
    seen = {}
    model.neck.register_forward_pre_hook(lambda m, a: seen.__setitem__('map', a[0][-1]))
    model.neck.register_forward_hook(lambda m, a, out: seen.__setitem__('gem', out[-1]))
    x = model.data_preprocessor(data_batch(seed=3), False)['inputs']
    model.eval()
    with torch.no_grad():
        with model.feature_tap.capture((32, 32)) as found:
            model.extract_feat(x)
        whole = found.post_pool(model.roi_head.pool(found.map, (0, 0, 32, 32), (32, 32)))
        # cells of 8 px on the 4 x 4 map: rows 1-2, columns 0-2 (x1, y1, x2, y2 in pixels)
        part = found.post_pool(model.roi_head.pool(found.map, (0, 8, 24, 24), (32, 32)))
    torch.testing.assert_close(whole, seen['gem'], rtol=1e-5, atol=1e-6)
    fmap = seen['map'].clamp(min=1e-6).double()
    expect = torch.stack([torch.stack([
        torch.stack([fmap[n, c, y, x]**2.5 for y in (1, 2) for x in (0, 1, 2)]).mean()**(1 / 2.5)
        for c in range(fmap.size(1))]) for n in range(fmap.size(0))])
    torch.testing.assert_close(part.double(), expect, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(part, whole)


def test_gem_model_trains_with_finite_gradients_on_an_empty_and_a_real_box():
    model = gem_model()
    boxes = iter([(0, 0, 0, 0), (4, 0, 4, 32), (3, 5, 27, 21)])  # none, empty, real
    model.data_preprocessor.rm_augment.sample_box = lambda h, w: next(boxes)
    for step in range(3):
        model.zero_grad()
        data = model.data_preprocessor(data_batch(seed=step), True)
        losses = model.loss(**data)
        sum(losses.values()).backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()
                   if p.grad is not None), step
    assert data['rm_mix'].lam > 0 and losses['loss_rm'] > 0
    assert model.neck.p.grad is not None and model.neck.p.grad.abs() > 0


def test_a_global_max_pooling_main_path_is_refused_at_build():
    from mmpretrain.registry import MODELS as REGISTRY

    @REGISTRY.register_module(force=True)
    class GlobalMaxPoolingForTest(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = torch.nn.AdaptiveMaxPool2d(1)

        def forward(self, x):
            return tuple(self.pool(v).flatten(1) for v in x)

    with pytest.raises(ValueError, match=r'pools the map with a global MAX \(neck.pool, '
                                         r'AdaptiveMaxPool2d\).*GlobalAveragePooling or '
                                         r'GeneralizedMeanPooling'):
        MODELS.build(tiny_model_cfg(neck=dict(type='GlobalMaxPoolingForTest')))
