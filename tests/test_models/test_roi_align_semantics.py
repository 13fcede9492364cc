"""mmcv.ops.roi_align on CPU (the compiled op RM's consistency head relies on).

With ``aligned=True`` a box given in pixel-corner coordinates, e.g. ``(x1, y1, x2, y2) =
(1, 1, 3, 3)``, covers exactly pixels 1..2 in each direction; with the adaptive sampling
ratio (``sampling_ratio=0``) the 2x2 sample points fall on those pixel centres, so the pooled
value is the plain mean of that block, and the gradient is 1/4 on those cells and 0 elsewhere.
"""
import pytest
import torch
import torch.nn.functional as F

ops = pytest.importorskip('mmcv.ops')


def _roi_align(x, rois, size, aligned=True, scale=1.0):
    return ops.roi_align(x, rois, size, spatial_scale=scale, sampling_ratio=0,
                         pool_mode='avg', aligned=aligned)


def bilinear(img, y, x):
    """Hand-written bilinear sample of a 2-D tensor at (y, x), y/x inside the image."""
    y0, x0 = int(y), int(x)
    y1, x1 = min(y0 + 1, img.shape[0] - 1), min(x0 + 1, img.shape[1] - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1]
            + ly * (1 - lx) * img[y1, x0] + ly * lx * img[y1, x1])


def test_forward_is_block_mean_and_backward_hits_the_block():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64)
    x.requires_grad_(True)
    # image 1, box x in [2, 5), y in [1, 3)  -> pixels rows 1..2, cols 2..4 (2x3 block)
    rois = torch.tensor([[1., 2., 1., 5., 3.]], dtype=torch.float64)
    out = _roi_align(x, rois, (1, 1))
    assert out.shape == (1, 3, 1, 1)
    expected = x[1, :, 1:3, 2:5].mean(dim=(-1, -2))
    torch.testing.assert_close(out[0, :, 0, 0], expected.detach())

    out.sum().backward()
    grad = x.grad
    ref = torch.zeros_like(grad)
    ref[1, :, 1:3, 2:5] = 1.0 / 6
    torch.testing.assert_close(grad, ref)
    assert grad[0].abs().sum() == 0, 'gradient leaked into the other image'


def test_aligned_flag_matters_and_matches_hand_bilinear():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, 5, 5, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0., 1., 1., 3., 3.]], dtype=torch.float64)
    img = x[0, 0]
    # aligned=False: box [1, 3] is not shifted; 2 samples per side at 1.5 and 2.5
    out = _roi_align(x, rois, (1, 1), aligned=False)
    hand = sum(bilinear(img, yy, xx) for yy in (1.5, 2.5) for xx in (1.5, 2.5)) / 4
    torch.testing.assert_close(out[0, 0, 0, 0], hand)
    out_aligned = _roi_align(x, rois, (1, 1), aligned=True)
    torch.testing.assert_close(out_aligned[0, 0, 0, 0], img[1:3, 1:3].mean())
    assert not torch.allclose(out, out_aligned)


def test_whole_map_2x2_equals_avg_pool_and_spatial_scale():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 4, 4, generator=g)
    # box in input pixels of an 8x8 image, feature map stride 2 -> spatial_scale 0.5
    rois = torch.tensor([[0., 0., 0., 8., 8.]])
    out = _roi_align(x, rois, (2, 2), scale=0.5)
    torch.testing.assert_close(out, F.avg_pool2d(x, 2))


def test_roi_align_module_matches_function():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 6, 6, generator=g, requires_grad=True)
    rois = torch.tensor([[0., 0.5, 1.25, 4.5, 5.0]])
    mod = ops.RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    a = mod(x, rois)
    b = _roi_align(x, rois, (1, 1))
    torch.testing.assert_close(a, b)
    a.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
