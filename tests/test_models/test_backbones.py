"""Backbones of the RecursiveMix paper: parameter counts, shapes, registry, training hooks.

The large mmrm networks (PyramidNet-164/200, DenseNet-121/161) are built on the ``meta``
device: parameter counts and output shapes need no memory and no arithmetic. Upstream
ResNet_CIFAR and PVTv2 cannot be built there and are built on the CPU, without forward passes.
Real forward/backward passes use small variants of the same classes, which keeps the file
around 15-50 s on a shared 2-core CPU.
"""
import pytest
import torch
import torch.nn as nn

import mmrm  # noqa: F401  (registers the backbones)
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmrm.models.backbones import (DenseNetCIFAR, PyramidNet,
                                   PyramidVisionTransformerV2Cls)

PVT_B1 = dict(embed_dims=64, num_layers=[2, 2, 2, 2])
SMALL_PYRAMIDNET = dict(type='PyramidNet', depth=20, alpha=48)
SMALL_PYRAMIDNET_BOTTLENECK = dict(
    type='PyramidNet', depth=11, alpha=12, bottleneck=True)
SMALL_DENSENET = dict(
    type='DenseNetCIFAR', arch=dict(growth_rate=8, depths=[2, 2, 2, 2]))


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_on_meta(cfg: dict) -> nn.Module:
    """Build without allocating or initialising memory (count / shape checks only).

    Upstream classes that read a tensor value while building (``linspace(...).item()`` for
    drop-path rates: mmpretrain's ResNet, mmdet's PVT) cannot be built on ``meta``; they are
    built on the CPU instead.
    """
    try:
        with torch.device('meta'):
            return MODELS.build(cfg)
    except RuntimeError as err:
        if 'meta' not in str(err):
            raise
        return MODELS.build(cfg)


def count_with_linear_head(cfg: dict, num_classes: int, feat_dim: int = None) -> int:
    backbone = build_on_meta(cfg)
    feat_dim = feat_dim or backbone.out_channels[-1]
    return num_params(backbone) + feat_dim * num_classes + num_classes


# ---------------------------------------------------------------- parameter counts (paper)
@pytest.mark.parametrize(
    'cfg, num_classes, feat_dim, target, exact',
    [
        # PyramidNet: exact counts of the CutMix / RM reference implementation.
        (dict(type='PyramidNet', depth=164, alpha=270, bottleneck=True), 100,
         1144, 27.32e6, 27_319_071),
        (dict(type='PyramidNet', depth=200, alpha=240, bottleneck=True), 10,
         1024, 26.75e6, 26_752_702),
        (dict(type='DenseNetCIFAR', arch='121'), 100, 1024, 7.05e6, 7_048_548),
        (dict(type='DenseNetCIFAR', arch='161'), 100, 2208, 26.68e6, 26_681_188),
        # The paper's CIFAR ResNets are mmpretrain's ResNet_CIFAR (512-d pooled feature).
        (dict(type='ResNet_CIFAR', depth=18), 100, 512, 11.22e6, None),
        (dict(type='ResNet_CIFAR', depth=34), 100, 512, 21.33e6, None),
        # PVTv2-B1 with an ImageNet head: 14.0M in the PVTv2 paper.
        (dict(type='PyramidVisionTransformerV2Cls', **PVT_B1), 1000, 512, 14.0e6,
         None),
    ],
    ids=['pyramidnet164_270_c100', 'pyramidnet200_240_c10', 'densenet121_c100',
         'densenet161_c100', 'resnet18_cifar_c100', 'resnet34_cifar_c100',
         'pvtv2_b1_in1k'])
def test_param_counts_match_paper(cfg, num_classes, feat_dim, target, exact):
    count = count_with_linear_head(cfg, num_classes, feat_dim)
    assert abs(count - target) / target <= 0.005, f'{count} vs {target}'
    if exact is not None:
        assert count == exact


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize('cfg, channels', [
    (dict(type='PyramidNet', depth=164, alpha=270, bottleneck=True),
     [424, 784, 1144]),
    (dict(type='PyramidNet', depth=200, alpha=240, bottleneck=True),
     [384, 704, 1024]),
    (dict(type='PyramidNet', depth=20, alpha=48), [32, 48, 64]),
])
def test_pyramidnet_shapes(cfg, channels):
    model = build_on_meta(dict(cfg, out_indices=(0, 1, 2))).eval()
    assert model.out_channels == channels
    outs = model(torch.empty(2, 3, 32, 32, device='meta'))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(2, channels[0], 32, 32),
                                              (2, channels[1], 16, 16),
                                              (2, channels[2], 8, 8)]


def test_pyramidnet_widening_rule():
    # alpha is spread evenly: the last block has 16 + alpha planes, the widths grow
    # monotonically by round(running width), and the default returns only the last stage.
    model = build_on_meta(dict(type='PyramidNet', depth=164, alpha=270, bottleneck=True))
    assert model.out_indices == (2, )
    planes = [blk.conv1.out_channels for i in (1, 2, 3)
              for blk in getattr(model, f'layer{i}')]
    assert len(planes) == 3 * 18 and planes[-1] == 16 + 270
    assert all(b >= a for a, b in zip(planes, planes[1:]))
    assert [round(16 + 270 / 54 * (k + 1)) for k in range(54)] == planes


def test_pyramidnet_rejects_bad_depth():
    with pytest.raises(ValueError):
        PyramidNet(depth=21, alpha=48)
    with pytest.raises(ValueError):
        PyramidNet(depth=22, alpha=48, bottleneck=True)


@pytest.mark.parametrize('arch, channels', [
    ('121', [128, 256, 512, 1024]),
    ('161', [192, 384, 1056, 2208]),
])
def test_densenet_cifar_shapes(arch, channels):
    model = build_on_meta(
        dict(type='DenseNetCIFAR', arch=arch, out_indices=(0, 1, 2, 3))).eval()
    assert model.out_channels == channels
    outs = model(torch.empty(2, 3, 32, 32, device='meta'))
    assert [tuple(o.shape) for o in outs] == [(2, channels[0], 16, 16),
                                              (2, channels[1], 8, 8),
                                              (2, channels[2], 4, 4),
                                              (2, channels[3], 4, 4)]
    # CIFAR stem: a single 3x3 stride-1 conv with 2k channels, no BN / pooling.
    assert isinstance(model.stem, nn.Conv2d)
    assert model.stem.out_channels == 2 * model.growth_rate
    assert model.stem.stride == (1, 1) and model.stem.kernel_size == (3, 3)


def test_densenet_cifar_real_forward_ends_activated():
    model = MODELS.build(dict(SMALL_DENSENET, out_indices=-1)).eval()
    out, = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, model.out_channels[-1], 4, 4)
    assert out.min() >= 0  # final BN + ReLU belongs to the backbone


def test_densenet_cifar_transition_act_switch():
    with torch.device('meta'):
        with_act = DenseNetCIFAR(arch='121')
        without = DenseNetCIFAR(arch='121', transition_act=False)
    assert isinstance(with_act.transitions[0].act, nn.ReLU)
    assert isinstance(without.transitions[0].act, nn.Identity)
    assert with_act.state_dict().keys() == without.state_dict().keys()


@pytest.fixture(scope='module')
def pvt_b1():
    return MODELS.build(
        dict(type='PyramidVisionTransformerV2Cls', out_indices=(0, 1, 2, 3),
             **PVT_B1)).eval()


def test_pvt_v2_cls_shapes(pvt_b1):
    with torch.no_grad():
        outs = pvt_b1(torch.randn(1, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(1, 64, 16, 16), (1, 128, 8, 8),
                                              (1, 320, 4, 4), (1, 512, 2, 2)]
    assert pvt_b1.out_channels == [64, 128, 320, 512]
    default = build_on_meta(dict(type='PyramidVisionTransformerV2Cls', **PVT_B1))
    assert default.out_indices == (3, )


def test_pvt_v2_cls_keys_match_mmdet():
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2
    ours = PyramidVisionTransformerV2Cls(**PVT_B1)
    theirs = PyramidVisionTransformerV2(**PVT_B1)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert all(ours_sd[k].shape == theirs_sd[k].shape for k in ours_sd)
    assert isinstance(ours, PyramidVisionTransformerV2)


def test_pvt_v2_cls_pretrained_with_prefix(tmp_path):
    # An mmpretrain classifier checkpoint (backbone.* / head.* keys) loads into the backbone,
    # which mmdet's own init_weights (it drops ``prefix``) would not do.
    tiny = dict(embed_dims=16, num_layers=[1, 1, 1, 1])
    source = PyramidVisionTransformerV2Cls(**tiny)
    source.init_weights()
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 128)
    ckpt = tmp_path / 'cls.pth'
    torch.save(dict(state_dict=state), ckpt)
    model = PyramidVisionTransformerV2Cls(
        **tiny,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    model.init_weights()
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


# ---------------------------------------------------------------- registry
@pytest.mark.parametrize('cfg', [
    SMALL_PYRAMIDNET, SMALL_PYRAMIDNET_BOTTLENECK, SMALL_DENSENET,
    dict(type='DenseNetCIFAR', arch='121'),
    dict(type='PyramidVisionTransformerV2Cls', **PVT_B1),
])
def test_registered_names_build(cfg):
    model = build_on_meta(cfg)
    assert type(model).__name__ == cfg['type']
    assert MODELS.get(cfg['type']) is type(model)


# ---------------------------------------------------------------- stochastic depth / dropout
@pytest.mark.parametrize('cfg, key', [
    (SMALL_PYRAMIDNET, 'drop_path_rate'),
    (SMALL_PYRAMIDNET_BOTTLENECK, 'drop_path_rate'),
    (SMALL_DENSENET, 'drop_rate'),
])
def test_drop_changes_training_not_eval(cfg, key):
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    dropped = MODELS.build(dict(cfg, **{key: 0.5}))
    dropped.load_state_dict(plain.state_dict())  # no extra parameters or buffers
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        plain.eval(), dropped.eval()
        assert torch.allclose(plain(x)[-1], dropped(x)[-1])
        plain.train(), dropped.train()
        assert not torch.allclose(plain(x)[-1], dropped(x)[-1])


def test_pyramidnet_drop_path_rule():
    model = PyramidNet(depth=20, alpha=48, drop_path_rate=0.3)
    rates = [blk.drop_path.drop_prob for i in (1, 2, 3) for blk in getattr(model, f'layer{i}')]
    assert rates == pytest.approx([0.3 * (k + 1) / 9 for k in range(9)])


# ---------------------------------------------------------------- freezing
def _frozen(module):
    return all(not p.requires_grad for p in module.parameters())


def _trainable(module):
    return all(p.requires_grad for p in module.parameters())


def test_pyramidnet_frozen_stages_and_norm_eval():
    model = MODELS.build(dict(SMALL_PYRAMIDNET, frozen_stages=1)).train()
    assert _frozen(model.conv1) and _frozen(model.bn1) and _frozen(model.layer1)
    assert not model.bn1.training and not model.layer1[0].bn1.training
    assert _trainable(model.layer2) and _trainable(model.bn_final)
    assert model.layer2[0].bn1.training

    model = MODELS.build(dict(SMALL_PYRAMIDNET, frozen_stages=3)).train()
    assert _frozen(model)

    model = MODELS.build(dict(SMALL_PYRAMIDNET, norm_eval=True)).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns) and _trainable(model)


def test_densenet_cifar_frozen_stages():
    model = MODELS.build(dict(SMALL_DENSENET, frozen_stages=2)).train()
    assert _frozen(model.stem)
    for i in range(2):
        assert _frozen(model.stages[i]) and _frozen(model.transitions[i])
        assert not model.transitions[i].norm.training
    assert _trainable(model.stages[2]) and _trainable(model.transitions[3])
    model = MODELS.build(dict(SMALL_DENSENET, norm_eval=True)).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns) and _trainable(model)


# ---------------------------------------------------------------- classifier loss step
def _first_conv(backbone):
    if isinstance(backbone, PyramidNet):
        return backbone.conv1
    if isinstance(backbone, DenseNetCIFAR):
        return backbone.stem
    if isinstance(backbone, PyramidVisionTransformerV2Cls):
        return backbone.layers[0][0].projection
    return backbone.conv1


@pytest.mark.parametrize('backbone, size', [
    (SMALL_PYRAMIDNET, 32),
    (SMALL_PYRAMIDNET_BOTTLENECK, 32),
    (SMALL_DENSENET, 32),
    (dict(type='PyramidVisionTransformerV2Cls', embed_dims=16,
          num_layers=[1, 1, 1, 1]), 64),
], ids=['pyramidnet_basic', 'pyramidnet_bottleneck', 'densenet_cifar', 'pvt_v2'])
def test_image_classifier_loss_step(backbone, size):
    torch.manual_seed(0)
    feat_dim = build_on_meta(backbone).out_channels[-1]
    model = MODELS.build(
        dict(type='ImageClassifier', backbone=backbone,
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=10, in_channels=feat_dim)))
    model.init_weights()
    model.train()
    inputs = torch.randn(4, 3, size, size)
    samples = [DataSample().set_gt_label(i) for i in range(4)]
    losses = model.loss(inputs, samples)
    losses['loss'].backward()
    assert torch.isfinite(losses['loss'])
    grad = _first_conv(model.backbone).weight.grad
    assert grad is not None and grad.abs().sum() > 0
