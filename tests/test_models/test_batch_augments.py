"""RecursiveMixBatchAugment: exact pixels, exact label weights, sampling, history edge cases."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from mmrm.models import RecursiveMixBatchAugment


def onehot(labels, num_classes=5):
    return F.one_hot(torch.as_tensor(labels), num_classes).float()


def batch(n=4, c=3, h=16, w=24, seed=0, num_classes=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    y = onehot(torch.randint(0, num_classes, (n, ), generator=g), num_classes)
    return x, y


def nearest_by_index(src, out_h, out_w):
    """Nearest resize written independently of F.interpolate: src index = floor(dst * in / out)."""
    in_h, in_w = src.shape[-2:]
    rows = (torch.arange(out_h) * in_h) // out_h
    cols = (torch.arange(out_w) * in_w) // out_w
    return src[..., rows[:, None], cols[None, :]]


def fixed_box(aug, box):
    aug.sample_box = lambda h, w: box


@pytest.fixture(autouse=True)
def no_epoch_info():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)
    yield
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)


def test_first_call_pastes_nothing():
    aug = RecursiveMixBatchAugment()
    x, y = batch()
    out, score = aug(x.clone(), y)
    assert torch.equal(out, x)
    assert torch.equal(score, y)
    assert aug.last_lam == 0. and aug.last_box == (0, 0, 0, 0)
    assert torch.equal(aug.history_inputs, x) and torch.equal(aug.history_scores, y)


def test_second_call_resize_fills_history_nearest_exact():
    aug = RecursiveMixBatchAugment()
    x1, y1 = batch(seed=1)
    x2, y2 = batch(seed=2)
    out1, s1 = aug(x1.clone(), y1)
    box = (5, 3, 18, 11)  # x1, y1, x2, y2 on a 16x24 (HxW) image: 13 wide, 8 high
    fixed_box(aug, box)
    out2, s2 = aug(x2.clone(), y2)
    bx1, by1, bx2, by2 = box
    lam = (bx2 - bx1) * (by2 - by1) / (16 * 24)
    assert aug.last_box == box and aug.last_lam == pytest.approx(lam)
    inside = out2[..., by1:by2, bx1:bx2]
    assert torch.equal(inside, nearest_by_index(out1, by2 - by1, bx2 - bx1))
    mask = torch.ones(16, 24, dtype=torch.bool)
    mask[by1:by2, bx1:bx2] = False
    assert torch.equal(out2[..., mask], x2[..., mask])
    # Eq. (1), to float32 rounding (one fused lerp kernel)
    assert torch.allclose(s2, lam * s1 + (1 - lam) * y2, atol=1e-7, rtol=0)
    # the recursion: a third call nests the second output (which holds the first) in its box
    box3 = (0, 0, 12, 8)
    fixed_box(aug, box3)
    x3, y3 = batch(seed=3)
    out3, s3 = aug(x3.clone(), y3)
    lam3 = 12 * 8 / (16 * 24)
    assert torch.equal(out3[..., 0:8, 0:12], nearest_by_index(out2, 8, 12))
    assert torch.allclose(s3, lam3 * s2 + (1 - lam3) * y3)
    assert torch.allclose(s3.sum(1), torch.ones(4))


def test_random_box_second_call_matches_formula():
    np.random.seed(3)
    aug = RecursiveMixBatchAugment(alpha=0.5)
    x1, y1 = batch(h=32, w=32, seed=4)
    out1, _ = aug(x1.clone(), y1)
    pasted = 0
    for seed in range(5, 15):
        x2, y2 = batch(h=32, w=32, seed=seed)
        prev_x, prev_s = aug.history_inputs.clone(), aug.history_scores.clone()
        out2, s2 = aug(x2.clone(), y2)
        bx1, by1, bx2, by2 = aug.last_box
        lam = (bx2 - bx1) * (by2 - by1) / 1024.
        assert aug.last_lam == pytest.approx(lam)
        if lam > 0:
            pasted += 1
            assert torch.equal(out2[..., by1:by2, bx1:bx2],
                               nearest_by_index(prev_x, by2 - by1, bx2 - bx1))
        assert torch.allclose(s2, lam * prev_s + (1 - lam) * y2)
    assert pasted >= 8


def test_bilinear_uses_align_corners():
    aug = RecursiveMixBatchAugment(interpolation='bilinear')
    x1, y1 = batch(seed=1)
    x2, y2 = batch(seed=2)
    out1, _ = aug(x1.clone(), y1)
    fixed_box(aug, (2, 4, 14, 13))
    out2, _ = aug(x2.clone(), y2)
    # bilinear with align_corners=True keeps the four corner pixels exactly
    inside = out2[..., 4:13, 2:14]
    expect = F.interpolate(out1, size=(9, 12), mode='bilinear', align_corners=True)
    assert torch.allclose(inside, expect)
    for (r, c), (rr, cc) in {(0, 0): (0, 0), (-1, -1): (-1, -1), (0, -1): (0, -1)}.items():
        assert torch.allclose(inside[..., r, c], out1[..., rr, cc])
    assert not torch.equal(inside, nearest_by_index(out1, 9, 12))


def test_cut_variant_copies_history_at_the_same_box():
    aug = RecursiveMixBatchAugment(resize=False)
    x1, y1 = batch(seed=1)
    x2, y2 = batch(seed=2)
    out1, s1 = aug(x1.clone(), y1)
    fixed_box(aug, (4, 2, 10, 12))
    out2, s2 = aug(x2.clone(), y2)
    lam = 6 * 10 / (16 * 24)
    assert torch.equal(out2[..., 2:12, 4:10], out1[..., 2:12, 4:10])
    assert torch.equal(out2[..., :, :4], x2[..., :, :4])
    assert torch.allclose(s2, lam * s1 + (1 - lam) * y2)


def test_no_history_variant_mixes_a_shuffled_current_batch():
    aug = RecursiveMixBatchAugment(use_history=False)
    x, y = batch(n=6, seed=7)
    fixed_box(aug, (0, 0, 12, 8))
    torch.manual_seed(11)
    out, s = aug(x.clone(), y)
    torch.manual_seed(11)
    perm = torch.randperm(6)
    lam = 12 * 8 / (16 * 24)
    assert aug.last_lam == pytest.approx(lam)  # pastes from the first call on
    assert torch.equal(out[..., :8, :12], nearest_by_index(x[perm], 8, 12))
    assert torch.allclose(s, lam * y[perm] + (1 - lam) * y)
    assert aug.history_inputs is None


def expected_lam_mean(height, width, alpha, grid=20000):
    """E[clipped box area / (H W)] of Eq. (2), by quadrature over lam_raw ~ U[0, alpha] and
    exact enumeration of the uniform centres (x and y are independent given lam_raw)."""
    def mean_clipped(length, cut):
        c = np.arange(length)[:, None]
        lo = np.clip(c - cut // 2, 0, length)
        hi = np.clip(c + cut // 2, 0, length)
        return (hi - lo).mean(0)

    lam_raw = (np.arange(grid) + 0.5) / grid * alpha
    ratio = np.sqrt(lam_raw)
    cut_w = (width * ratio).astype(int)[None, :]
    cut_h = (height * ratio).astype(int)[None, :]
    return float((mean_clipped(width, cut_w) * mean_clipped(height, cut_h)).mean()
                 / (height * width))


@pytest.mark.parametrize('alpha,hw', [(0.5, (32, 32)), (1.0, (24, 40)), (0.2, (224, 224))])
def test_box_sampling_distribution(alpha, hw):
    np.random.seed(0)
    aug = RecursiveMixBatchAugment(alpha=alpha)
    h, w = hw
    boxes = np.array([aug.sample_box(h, w) for _ in range(20000)])
    x1, y1, x2, y2 = boxes.T
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= w).all() and (y2 <= h).all()
    assert (x2 >= x1).all() and (y2 >= y1).all()
    lam = (x2 - x1) * (y2 - y1) / (h * w)
    assert lam.min() >= 0 and lam.max() <= alpha
    assert lam.max() > 0.9 * alpha * (1 - 2 / min(h, w)) ** 2
    expect = expected_lam_mean(h, w, alpha)
    assert abs(lam.mean() - expect) < 4 * lam.std() / math.sqrt(len(lam))
    # the historical share is small: never the CutMix-like Beta(1,1) mean of 0.5
    assert lam.mean() < alpha / 2


def test_history_edge_cases_batch_size_resolution_and_bs1():
    aug = RecursiveMixBatchAugment()
    fixed_box(aug, (0, 0, 8, 8))
    aug(*batch(n=4, seed=1))
    # a smaller (short last) batch pairs with the first samples of the history
    hist = aug.history_inputs.clone()
    out, _ = aug(batch(n=2, seed=2)[0].clone(), batch(n=2, seed=2)[1])
    assert aug.last_lam > 0
    assert torch.equal(out[..., :8, :8], nearest_by_index(hist[:2], 8, 8))
    # a batch larger than the history: no paste, history replaced by the new batch
    x, y = batch(n=4, seed=3)
    out, s = aug(x.clone(), y)
    assert aug.last_lam == 0 and torch.equal(out, x) and torch.equal(s, y)
    assert aug.history_inputs.size(0) == 4
    # a new resolution: no paste
    x, y = batch(n=4, h=20, w=20, seed=4)
    out, s = aug(x.clone(), y)
    assert aug.last_lam == 0 and torch.equal(out, x)
    # batch size 1 works
    aug2 = RecursiveMixBatchAugment()
    fixed_box(aug2, (2, 2, 10, 6))
    aug2(*batch(n=1, seed=5))
    x, y = batch(n=1, seed=6)
    out, s = aug2(x.clone(), y)
    assert aug2.last_lam == pytest.approx(32 / 384) and not torch.equal(out, x)
    # an empty box: nothing pasted, lam exactly 0
    fixed_box(aug2, (5, 5, 5, 9))
    x, y = batch(n=1, seed=7)
    out, s = aug2(x.clone(), y)
    assert aug2.last_lam == 0 and aug2.last_box == (0, 0, 0, 0) and torch.equal(out, x)


def test_history_reset_per_epoch_or_never():
    hub = MessageHub.get_current_instance()
    for policy, pastes_after_new_epoch in (('epoch', False), ('never', True)):
        aug = RecursiveMixBatchAugment(reset_history=policy)
        fixed_box(aug, (0, 0, 8, 8))
        hub.update_info('epoch', 0)
        aug(*batch(seed=1))
        aug(*batch(seed=2))
        assert aug.last_lam > 0
        hub.update_info('epoch', 1)
        aug(*batch(seed=3))
        assert (aug.last_lam > 0) == pastes_after_new_epoch
        aug(*batch(seed=4))
        assert aug.last_lam > 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(alpha=0), 'alpha'), (dict(alpha=1.5), 'alpha'), (dict(alpha=-0.1), 'alpha'),
    (dict(alpha='0.5'), 'alpha'), (dict(interpolation='bicubic'), "interpolation.*'nearest'"),
    (dict(reset_history='iter'), 'reset_history'), (dict(resize='yes'), 'resize'),
    (dict(use_history=1), 'use_history')])
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecursiveMixBatchAugment(**kwargs)


def test_registered_and_buildable_from_config():
    from mmpretrain.registry import BATCH_AUGMENTS
    aug = BATCH_AUGMENTS.build(dict(type='RecursiveMixBatchAugment', alpha=0.3,
                                    interpolation='bilinear'))
    assert isinstance(aug, RecursiveMixBatchAugment) and aug.alpha == 0.3


@pytest.mark.parametrize('in_hw', [(7, 7), (28, 28), (32, 24), (100, 100), (224, 224)])
def test_nearest_resize_is_bit_identical_to_interpolate(in_hw):
    from mmrm.models.batch_augments.resize_fill import nearest_resize
    src = torch.randn(2, 3, *in_hw)
    h, w = in_hw
    for out_h, out_w in {(1, 1), (h, w), (max(1, h // 3), max(1, w // 2)), (h - 1, w - 1),
                         (max(1, int(h * 0.7)), max(1, int(w * 0.41)))}:
        assert torch.equal(nearest_resize(src, out_h, out_w),
                           F.interpolate(src, size=(out_h, out_w), mode='nearest'))


@pytest.mark.parametrize('in_hw', [(32, 32), (224, 224), (97, 131)])
def test_resize_fill_writes_exactly_the_interpolated_box_on_both_paths(in_hw):
    """Rows copied, then 1-d resized into the box (CPU), or one gather (other devices, and
    boxes of a non-contiguous batch): the box holds exactly F.interpolate(history, box,
    'nearest'), nothing outside the box changes."""
    from mmrm.models.batch_augments.resize_fill import resize_fill_nearest_
    h, w = in_hw
    g = torch.Generator().manual_seed(h)
    src, base = torch.randn(2, 3, h, w, generator=g), torch.randn(2, 3, h, w, generator=g)
    boxes = [(0, 0, w, h), (1, 2, w - 3, h - 1), (w // 3, h // 4, w // 3 + 1, h // 4 + 1)]
    for _ in range(30):
        x1, x2 = sorted(torch.randint(0, w + 1, (2, ), generator=g).tolist())
        y1, y2 = sorted(torch.randint(0, h + 1, (2, ), generator=g).tolist())
        if x2 > x1 and y2 > y1:
            boxes.append((x1, y1, x2, y2))
    for layout in (torch.contiguous_format, torch.channels_last):
        for x1, y1, x2, y2 in boxes:
            out = base.clone().contiguous(memory_format=layout)
            resize_fill_nearest_(out[..., y1:y2, x1:x2], src)
            expect = base.clone()
            expect[..., y1:y2, x1:x2] = F.interpolate(src, size=(y2 - y1, x2 - x1),
                                                      mode='nearest')
            assert torch.equal(out, expect), (layout, (x1, y1, x2, y2))


def test_non_image_batches_are_refused_with_the_shapes():
    from mmrm.models.batch_augments.resize_fill import resize_fill_nearest_
    aug = RecursiveMixBatchAugment()
    with pytest.raises(ValueError, match=r'an \(N, C, H, W\) image batch .* got inputs '
                                         r'\(3, 16, 16\)'):
        aug(torch.rand(3, 16, 16), onehot([0, 1, 2]))
    with pytest.raises(ValueError, match=r'scores \(2, 5\)'):
        aug(torch.rand(3, 1, 16, 16), onehot([0, 1]))
    box = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r'ResizeFill resizes an \(N, C, H, W\) .* got '
                                         r'\(3, 16, 16\) into \(2, 3, 8, 8\)'):
        resize_fill_nearest_(box, torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match=r'got \(2, 1, 16, 16\) into \(2, 3, 8, 8\)'):
        resize_fill_nearest_(box, torch.rand(2, 1, 16, 16))
