"""DropBlock: whole blocks dropped at the scheduled rate and rescaled; DropBlockBackbone places
one layer per conv + norm and shortcut of the chosen stages without changing a key."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

from mmrm.models import DropBlock


@pytest.fixture(autouse=True)
def no_runtime_info():
    hub = MessageHub.get_current_instance()
    for key in ('iter', 'max_iters'):
        hub.runtime_info.pop(key, None)
    yield
    for key in ('iter', 'max_iters'):
        hub.runtime_info.pop(key, None)


def seeds_at(monkeypatch, positions):
    """Make the next Bernoulli draw of seeds exactly 1 at ``positions`` (n, c, y, x)."""
    def fake_bernoulli(probs):
        out = torch.zeros_like(probs)
        for p in positions:
            out[p] = 1
        return out
    monkeypatch.setattr(torch, 'bernoulli', fake_bernoulli)


@pytest.mark.parametrize('block', [3, 4])
def test_one_seed_drops_one_whole_block_and_rescales(monkeypatch, block):
    layer = DropBlock(drop_prob=0.2, block_size=block, schedule='constant').train()
    x = torch.rand(2, 3, 9, 10) + 1
    seeds_at(monkeypatch, [(1, 2, 4, 3)])  # block corner (row 4, col 3) of sample 1, channel 2
    out = layer(x)
    dropped = torch.zeros(2, 3, 9, 10, dtype=torch.bool)
    dropped[1, 2, 4:4 + block, 3:3 + block] = True
    assert torch.equal(out == 0, dropped)
    scale = x.numel() / (x.numel() - block * block)
    assert torch.allclose(out[~dropped], x[~dropped] * scale)


def test_seed_grid_keeps_blocks_inside_the_map_and_gamma_is_eq1(monkeypatch):
    seen = {}

    def spy(probs):
        seen['shape'], seen['gamma'] = probs.shape, float(probs.flatten()[0])
        return torch.zeros_like(probs)
    monkeypatch.setattr(torch, 'bernoulli', spy)
    DropBlock(drop_prob=0.1, block_size=3, schedule='constant').train()(torch.rand(2, 4, 8, 6))
    assert seen['shape'] == (2, 4, 6, 4)
    assert seen['gamma'] == pytest.approx(0.1 / 9 * 48 / 24)


def test_drop_rate_matches_the_seed_rate():
    """Empirical dropped share == the exact share implied by gamma (a pixel is kept when none
    of the k block corners covering it is seeded: (1 - gamma)^k)."""
    torch.manual_seed(0)
    p, b, h, w = 0.1, 3, 12, 12
    layer = DropBlock(drop_prob=p, block_size=b, schedule='constant').train()
    mask = layer.block_mask(torch.zeros(64, 32, h, w), p)
    assert set(mask.unique().tolist()) <= {0., 1.}
    gamma = p / b**2 * h * w / ((h - b + 1) * (w - b + 1))
    rows = np.array([min(i, b - 1, h - 1 - i, h - b) + 1 for i in range(h)])
    cover = rows[:, None] * rows[None, :]  # corners covering each pixel
    expected_drop = 1 - ((1 - gamma)**cover).mean()
    assert float(1 - mask.mean()) == pytest.approx(expected_drop, abs=0.004)
    assert expected_drop == pytest.approx(p, abs=0.02)


def test_linear_schedule_from_the_runner_and_eval_identity():
    layer = DropBlock(drop_prob=0.2, block_size=2).train()
    hub = MessageHub.get_current_instance()
    x = torch.rand(2, 2, 6, 6)
    hub.update_info('max_iters', 100)
    hub.update_info('iter', 0)
    assert layer.current_drop_prob() == 0 and torch.equal(layer(x), x)
    hub.update_info('iter', 25)
    assert layer.current_drop_prob() == pytest.approx(0.05)
    hub.update_info('iter', 100)
    assert layer.current_drop_prob() == pytest.approx(0.2)
    assert torch.equal(layer.eval()(x), x)


def test_block_larger_than_the_map_drops_whole_channels():
    torch.manual_seed(0)
    layer = DropBlock(drop_prob=0.5, block_size=7, schedule='constant').train()
    mask = layer.block_mask(torch.zeros(16, 32, 2, 3), 0.5)
    per_channel = mask.flatten(2)
    assert torch.equal(per_channel.amin(2), per_channel.amax(2))  # all or nothing
    assert 0.3 < float(1 - per_channel[..., 0].mean()) < 0.7  # gamma = p for a full-map block


def test_bad_settings():
    with pytest.raises(ValueError,
                       match=r'drop_prob must be a number in \[0, 1\) \(1 - keep_prob\)'):
        DropBlock(drop_prob=1.0, block_size=3)
    with pytest.raises(ValueError, match='block_size must be an int >= 1'):
        DropBlock(drop_prob=0.1, block_size=0)
    with pytest.raises(ValueError, match='schedule must be one of'):
        DropBlock(drop_prob=0.1, block_size=3, schedule='cosine')
    with pytest.raises(ValueError, match="ResNet has no stage 'layer5'"):
        backbone(stages=('layer5', ))
    with pytest.raises(ValueError, match=r'drop_prob must be a number in \[0, 1\) '
                                         r'\(1 - keep_prob\), got -0.1'):
        backbone(dropblock=dict(type='DropBlock', drop_prob=-0.1, block_size=3))
    with pytest.raises(TypeError, match='no DropBlock placement is defined for block'):
        MODELS.build(dict(type='DropBlockBackbone', backbone_type='MobileNetV2',
                          dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=3),
                          stages=('layer2', )))


def backbone(depth=18, **kwargs):
    cfg = dict(type='DropBlockBackbone', backbone_type='ResNet', depth=depth,
               dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=3,
                              schedule='constant'),
               stages=('layer3', 'layer4'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def count_calls(model):
    calls = {}
    for name, m in model.named_modules():
        if isinstance(m, DropBlock):
            calls[name] = 0
            m.register_forward_hook(lambda mod, a, o, n=name: calls.__setitem__(n, calls[n] + 1))
    return calls


def test_backbone_placement_rates_and_keys():
    model = backbone(depth=50)
    plain = MODELS.build(dict(type='ResNet', depth=50))
    assert list(model.state_dict()) == list(plain.state_dict())
    layers = {n: m for n, m in model.named_modules() if isinstance(m, DropBlock)}
    # 3 branch norms + the shortcut of each of the 6 + 3 bottlenecks
    assert len(layers) == 4 * (6 + 3)
    assert {m.drop_prob for n, m in layers.items() if n.startswith('layer3')} == {0.025}
    assert {m.drop_prob for n, m in layers.items() if n.startswith('layer4')} == {0.1}
    assert isinstance(model.layer3[1].downsample, DropBlock)  # identity shortcut
    assert isinstance(model.layer3[0].downsample[-1], DropBlock)  # projection shortcut
    calls = count_calls(model)
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert set(calls.values()) == {1}, calls
    # eval: the same function as the plain backbone with the same weights
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model(x)[0], plain(x)[0])


def test_placement_survives_a_norm_replaced_after_build():
    """sync_bn conversion builds new norm modules (children copied, hooks not)."""
    model = backbone()
    block = model.layer3[0]
    block.bn1 = copy.deepcopy(block.bn1)
    block.bn1._forward_hooks.clear()
    calls = count_calls(model)
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert calls['layer3.0.dropblock_norm1'] == 1


def test_a_deep_copy_applies_its_own_dropblocks_once():
    """A deep copy (an EMA / SWA averaged model, an analysis copy) must drop with its OWN
    layers, once each, and follow its own train / eval mode, never the original's."""
    model = backbone()
    clone = copy.deepcopy(model)
    calls, clone_calls = count_calls(model), count_calls(clone)
    model.train(), clone.train()
    clone(torch.randn(2, 3, 32, 32))
    assert set(calls.values()) == {0}, calls
    assert set(clone_calls.values()) == {1}, clone_calls
    # the original training, its copy evaluating: the copy is the plain function
    model.eval(), clone.eval()
    plain = MODELS.build(dict(type='ResNet', depth=18))
    plain.load_state_dict(clone.state_dict())
    plain.eval()
    model.train()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(clone(x)[0], plain(x)[0])


def test_pyramidnet_placement():
    model = MODELS.build(dict(
        type='DropBlockBackbone', backbone_type='PyramidNet', depth=20, alpha=48,
        dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=4), stages=('layer2', 'layer3')))
    calls = count_calls(model)
    model.train()
    model(torch.randn(2, 3, 32, 32))
    # 3 basic blocks per stage: bn2, bn3 and the shortcut each
    assert len(calls) == 2 * 3 * 3 and set(calls.values()) == {1}
    assert isinstance(model.layer2[0].downsample, nn.Sequential)


# --------------------------------------------------------------------------------------------
# DropBlock against an independent reference of its authors' code (Ghiasi et al.; TPU ResNet
# ``dropblock``): seeds where uniform noise < gamma at the valid block CENTRES of the map,
# blocks grown by a SAME-padded k x k min pool of the keep pattern, output x * M / mean(M).
# --------------------------------------------------------------------------------------------
def ref_dropblock(x, noise, keep_prob, block):
    """The authors' algorithm in numpy loops, on square maps: ``noise`` is their uniform draw
    (N, C, W, W). Returns (output, keep mask, gamma)."""
    x, noise = x.double().numpy(), noise.double().numpy()
    n, c, width, _ = x.shape
    k = min(block, width)
    gamma = (1 - keep_prob) * width**2 / k**2 / (width - k + 1)**2
    lo, hi = k // 2, width - (k - 1) // 2  # valid centres: lo <= i < hi
    pattern = np.ones_like(x)  # 1 = keep
    for i in range(lo, hi):
        for j in range(lo, hi):
            pattern[:, :, i, j] = noise[:, :, i, j] >= gamma
    if k == width:
        mask = pattern.min((2, 3), keepdims=True) * np.ones_like(x)
    else:  # -max_pool(-pattern, k, stride 1, 'SAME'): pad (k-1)//2 before, the rest after
        before = (k - 1) // 2
        mask = np.ones_like(x)
        for i in range(width):
            for j in range(width):
                ys = slice(max(i - before, 0), min(i - before + k, width))
                xs = slice(max(j - before, 0), min(j - before + k, width))
                mask[:, :, i, j] = pattern[:, :, ys, xs].min((2, 3))
    return x / mask.mean() * mask, mask, gamma


@pytest.mark.parametrize('block,width', [(3, 7), (4, 8), (4, 4), (7, 7), (7, 14), (3, 2)])
def test_dropblock_equals_the_authors_algorithm(monkeypatch, block, width):
    """Same noise for both: the reference seeds a block CENTRE where noise < gamma; the layer
    draws Bernoulli(gamma) seeds at block CORNERS, so its draw is the reference's seeds moved
    to their corners (centre - k // 2)."""
    g = torch.Generator().manual_seed(block * 100 + width)
    x = torch.rand(2, 3, width, width, generator=g) + 0.5
    noise = torch.rand(2, 3, width, width, generator=g)
    keep_prob = 0.7
    k = min(block, width)
    expect, mask, gamma = ref_dropblock(x, noise, keep_prob, block)
    seen = {}

    def corner_seeds(probs):
        seen['gamma'] = probs.flatten()[0].item()
        assert probs.shape == (2, 3, width - k + 1, width - k + 1)
        centres = noise[:, :, k // 2:k // 2 + width - k + 1, k // 2:k // 2 + width - k + 1]
        return (centres < gamma).float()

    monkeypatch.setattr(torch, 'bernoulli', corner_seeds)
    out = DropBlock(drop_prob=1 - keep_prob, block_size=block, schedule='constant').train()(x)
    assert seen['gamma'] == pytest.approx(gamma, rel=1e-6)
    assert 0 < mask.mean() < 1, 'the draw must drop something and keep something'
    np.testing.assert_array_equal((out != 0).numpy(), mask.astype(bool))
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-6, atol=1e-6)


def test_dropblock_refuses_maps_that_are_not_4d():
    layer = DropBlock(drop_prob=0.1, block_size=3, schedule='constant')
    for shape in ((2, 16, 32), (2, 32)):
        for mode in (True, False):
            with pytest.raises(ValueError, match=rf'\(N, C, H, W\) feature maps; got shape '
                                                 rf'\({shape[0]}, {shape[1]}'):
                layer.train(mode)(torch.rand(*shape))
