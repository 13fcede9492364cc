"""RoIConsistencyHead: the 1x1 RoIAlign of the pasted box on every kind of map, its matmul form
against mmcv's and torchvision's RoIAlign, and the KL term by hand."""
import math
import sys

import numpy as np
import pytest
import torch
import torchvision
from mmpretrain.registry import MODELS

import mmrm  # noqa: F401
from mmrm.models import RoIConsistencyHead
from mmrm.models.utils import SpatialMap, roi_align_1x1_weights

BACKENDS = ('matmul', 'mmcv', 'torchvision')


def position_map(h, w, stride):
    """(1, 2, h, w): channel 0 is the x and channel 1 the y input-pixel coordinate of each cell
    centre. Bilinear sampling of a linear function is exact, so a 1x1 RoIAlign returns the
    centre of the box it really pooled."""
    xs = (torch.arange(w) + 0.5) * stride
    ys = (torch.arange(h) + 0.5) * stride
    return torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)])[None]


def as_layout(nchw: torch.Tensor, layout: str, extra: int = 0) -> SpatialMap:
    """The same map in another layout, as the networks keep it."""
    n, c, h, w = nchw.shape
    if layout == 'nchw':
        return SpatialMap(nchw, 'nchw', (h, w))
    if layout == 'channels_last':  # NCHW logically, NHWC in memory (strided)
        t = nchw.contiguous(memory_format=torch.channels_last)
        assert not t.is_contiguous()
        return SpatialMap(t, 'nchw', (h, w))
    if layout == 'nhwc':
        return SpatialMap(nchw.permute(0, 2, 3, 1).contiguous(), 'nhwc', (h, w))
    tokens = nchw.flatten(2).transpose(1, 2)  # (N, h*w, C), row by row
    if layout == 'nlc':
        cls = torch.full((n, extra, c), 1e4)  # class / distillation tokens: never pooled
        return SpatialMap(torch.cat([cls, tokens], 1), 'nlc', (h, w), num_extra_tokens=extra)
    assert layout == 'ncl'
    return SpatialMap(tokens.transpose(1, 2).contiguous(), 'ncl', (h, w))


KINDS = [('nchw', 0), ('channels_last', 0), ('nhwc', 0), ('nlc', 0), ('nlc', 1), ('nlc', 2),
         ('ncl', 0)]


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('layout, extra', KINDS)
@pytest.mark.parametrize('box', [(8, 4, 36, 20), (4, 12, 20, 28), (12, 8, 40, 12)])
def test_pools_exactly_the_pasted_box_on_every_kind_of_map(box, layout, extra, backend):
    head = RoIConsistencyHead(num_classes=3, in_channels=2, roi_backend=backend)
    fmap = as_layout(position_map(8, 12, stride=4), layout, extra)  # input 32 (H) x 48 (W)
    pooled = head.pool(fmap, box, (32, 48))
    x1, y1, x2, y2 = box
    assert torch.allclose(pooled, torch.tensor([[(x1 + x2) / 2, (y1 + y2) / 2]]), atol=1e-4)
    transposed = (y1, x1, y2, x2)
    assert not torch.allclose(head.pool(fmap, transposed, (32, 48)), pooled, atol=1e-3)


def _random_cases(count, seed=0):
    """(map size, input size, box) with strides of 1 to 32 (power-of-two, and 3 and 7 where
    the float32 box arithmetic is inexact), boxes anywhere, including 1-pixel and full ones."""
    rng = np.random.RandomState(seed)
    cases = []
    for i in range(count):
        h, w = rng.randint(1, 15, size=2)
        stride = [1, 2, 3, 4, 7, 8, 16, 32][i % 8]
        in_h, in_w = h * stride, w * stride
        x1, x2 = sorted(rng.randint(0, in_w + 1, size=2))
        y1, y2 = sorted(rng.randint(0, in_h + 1, size=2))
        if i % 5 == 0:
            x1, y1, x2, y2 = 0, 0, in_w, in_h
        if i % 7 == 0:
            x2, y2 = min(x1 + 1, in_w), min(y1 + 1, in_h)
        cases.append(((int(h), int(w)), (int(in_h), int(in_w)), (x1, y1, x2, y2)))
    return cases


def test_matmul_equals_mmcv_and_torchvision_roi_align_on_many_boxes_and_maps():
    """Eq. (4)'s 1x1 RoIAlign as a weighted sum, against both kernels, values and gradients."""
    from mmcv.ops import roi_align as mmcv_roi_align
    g = torch.Generator().manual_seed(0)
    checked = 0
    for (h, w), (in_h, in_w), box in _random_cases(240):
        feat = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64).float()
        rois = torch.tensor([[0., *box], [1., *box]])
        scale = w / in_w
        tv = torchvision.ops.roi_align(feat, rois, 1, scale, 0, True).flatten(1)
        mm = mmcv_roi_align(feat, rois, (1, 1), scale, 0, 'avg', True).flatten(1)
        weights = roi_align_1x1_weights(box, (in_h, in_w), (h, w))
        ours = torch.einsum('nchw,hw->nc', feat, weights)
        torch.testing.assert_close(ours, tv, rtol=1e-5, atol=1e-6)
        if torch.allclose(mm, tv, rtol=1e-5, atol=1e-6):
            # the two kernels differ only where mmcv's float32 product of the box and the
            # scale lands past an integer (stride 7): then ceil() samples one more point
            torch.testing.assert_close(ours, mm, rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked >= 200
    # gradients: the same weights spread the gradient back (RoIAlign's backward)
    feat = torch.randn(2, 4, 7, 9, generator=g, requires_grad=True)
    box, ref_feat = (5, 3, 27, 20), feat.detach().clone().requires_grad_()
    for backend, f in (('matmul', feat), ('torchvision', ref_feat)):
        head = RoIConsistencyHead(num_classes=2, in_channels=4, roi_backend=backend)
        (head.pool(f, box, (28, 36)) * torch.arange(1., 5.)).sum().backward()
    torch.testing.assert_close(feat.grad, ref_feat.grad, rtol=1e-5, atol=1e-6)
    assert feat.grad.abs().sum() > 0


def test_empty_box_pools_zero_and_keeps_the_graph():
    head = RoIConsistencyHead(num_classes=3, in_channels=2)
    feat = torch.randn(2, 2, 4, 4, requires_grad=True)
    pooled = head.pool(feat, (0, 0, 0, 0), (16, 16))
    assert torch.equal(pooled, torch.zeros(2, 2))
    pooled.sum().backward()
    assert torch.equal(feat.grad, torch.zeros_like(feat))


def test_roi_weights_sum_to_one_inside_and_follow_the_box():
    w = roi_align_1x1_weights((8, 8, 24, 16), (32, 32), (4, 4))  # stride 8
    assert w.dtype == torch.float32 and w.shape == (4, 4)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    # box rows y 8..16 -> map rows 0.5..1.5: sampled at 1.0, all on cell row 1
    assert float(w[[0, 2, 3]].abs().sum()) == 0
    assert float(w[:, 1:3].sum()) == pytest.approx(1.0, abs=1e-6)


def test_mmcv_backend_without_compiled_ops_names_the_alternatives(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmcv.ops', None)  # as with mmcv-lite
    with pytest.raises(ImportError, match="roi_backend='matmul'"):
        RoIConsistencyHead(num_classes=3, in_channels=2, roi_backend='mmcv')
    head = RoIConsistencyHead(num_classes=3, in_channels=2)  # the default needs no ops
    assert head.pool(torch.ones(1, 2, 4, 4), (0, 0, 8, 8), (16, 16)).shape == (1, 2)


def test_mmcv_without_a_kernel_for_the_device_names_the_alternative():
    # mmcv compiled without CUDA answers a CUDA map with "implementation ... not found"; the
    # meta device takes the same path on this CPU-only machine
    head = RoIConsistencyHead(num_classes=3, in_channels=2, roi_backend='mmcv')
    feat = torch.zeros(1, 2, 4, 4, device='meta')
    with pytest.raises(RuntimeError, match="no RoIAlign kernel for meta; set "
                       "roi_head.roi_backend='matmul'"):
        head.pool(feat, (0, 0, 8, 8), (16, 16))


def test_channel_mismatch_names_the_option():
    head = RoIConsistencyHead(num_classes=3, in_channels=8)
    with pytest.raises(ValueError, match='set roi_head.in_channels=2'):
        head.pool(torch.ones(1, 2, 4, 4), (0, 0, 8, 8), (16, 16))


def test_kl_term_by_hand_numbers():
    head = RoIConsistencyHead(num_classes=3, in_channels=2, omega=0.5)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]))
        head.fc.bias.copy_(torch.tensor([0., 0.5, -1.]))
    feat = torch.stack([torch.full((2, 3, 3), 0.2), torch.full((2, 3, 3), -0.4)], 1)
    feat[1] *= 2
    z = head(feat, (0., 0., 8., 8.), (12, 12))
    p_h = torch.tensor([[2., 0., -1.], [0., 1., 0.]])
    got = head.loss(z, p_h, 0.25).item()

    def softmax(v):
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    total = 0.
    for (a, b), ph in zip([(0.2, -0.4), (0.4, -0.8)], p_h.tolist()):
        q = softmax([a, b + 0.5, a + b - 1.])
        p = softmax(ph)
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    assert got == pytest.approx(0.5 * 0.25 * total / 2, rel=1e-5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(omega=-0.1), 'omega'), (dict(share_fc='yes'), 'share_fc'),
    (dict(in_channels=0), 'in_channels'), (dict(num_classes=2.5), 'num_classes'),
    (dict(roi_backend='detectron2'),
     "roi_backend must be one of \\('matmul', 'mmcv', 'torchvision'\\)"),
])
def test_bad_options_are_refused(kwargs, match):
    cfg = {**dict(type='RoIConsistencyHead', num_classes=3, in_channels=2), **kwargs}
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_weighted_kl_matches_autograd_of_kl_div_in_value_and_gradient():
    """The fused consistency loss (one autograd node) equals ``w * kl_div(batchmean)`` and its
    gradient, in float32 and under bf16 autocast; weight 0 still gives a (zero) gradient."""
    import torch.nn.functional as F

    from mmrm.models.heads.roi_consistency_head import WeightedKL
    g = torch.Generator().manual_seed(0)
    p_h = torch.randn(6, 5, generator=g)
    for weight in (0.7, 0.):
        z = torch.randn(6, 5, generator=g, requires_grad=True)
        ours = WeightedKL.apply(z, p_h, weight)
        grad, = torch.autograd.grad(ours, z)
        z_ref = z.detach().clone().requires_grad_()
        ref = weight * F.kl_div(F.log_softmax(z_ref, 1), F.log_softmax(p_h, 1),
                                reduction='batchmean', log_target=True)
        ref_grad, = torch.autograd.grad(ref, z_ref)
        torch.testing.assert_close(ours, ref)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)
    z16 = torch.randn(6, 5, generator=g).bfloat16().requires_grad_()
    loss = WeightedKL.apply(z16, p_h, 0.5)
    loss.backward()
    assert loss.dtype == torch.float32 and z16.grad.dtype == torch.bfloat16


def test_cached_weights_made_under_inference_mode_still_train():
    """The RoI weights are cached per box: a first use under ``torch.inference_mode`` (a
    visualisation, an analysis) must not leave an inference tensor that a later training step
    cannot save for backward."""
    head = RoIConsistencyHead(num_classes=3, in_channels=2)
    box, input_hw = (3, 5, 29, 21), (40, 44)  # a box no other test caches
    feat = torch.randn(2, 2, 5, 11)
    with torch.inference_mode():
        eval_pooled = head.pool(feat, box, input_hw)
    f = feat.clone().requires_grad_()
    pooled = head.pool(f, box, input_hw)
    pooled.sum().backward()
    torch.testing.assert_close(pooled.detach(), eval_pooled)
    weights = roi_align_1x1_weights(box, input_hw, (5, 11))
    torch.testing.assert_close(f.grad, weights.expand(2, 2, 5, 11))
