"""ResizeFill's CPU paths (#35): the gather straight into the box, with the cached index table
(small boxes) and the one computed per step (large boxes), the fallback for another dtype, and
the host-side history verdict; every one bit for bit what F.interpolate / torch.where give."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from mmrm.models import RecursiveMixBatchAugment
from mmrm.models.batch_augments import resize_fill
from mmrm.models.batch_augments.resize_fill import SMALL_BOX, resize_fill_nearest_


@pytest.fixture(autouse=True)
def no_epoch_info():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)
    yield
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)


def bits(t):
    """The raw bits, so that -0.0 vs 0.0 and NaN payloads count as differences."""
    return t.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def special_batch(n, c, h, w, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g).to(dtype)
    flat = x.view(-1)
    for k, v in enumerate((-0., float('inf'), float('-inf'), float('nan'), 0.)):
        flat[(k * 7919) % flat.numel()] = v
    return x


# (in_hw, box) pairs chosen on both sides of SMALL_BOX: the cached table and the per-step one
SMALL = ((32, 32), (3, 5, 25, 19))  # 22 x 14 = 308 pixels
LARGE = ((224, 224), (10, 20, 190, 150))  # 180 x 130 = 23400 pixels
ODD = ((97, 131), (0, 0, 131, 97))  # the whole image: 12707 pixels, identity resize


def test_the_chosen_boxes_cover_both_index_branches():
    for (h, w), (x1, y1, x2, y2) in (SMALL, ):
        assert (x2 - x1) * (y2 - y1) <= SMALL_BOX
    for (h, w), (x1, y1, x2, y2) in (LARGE, ODD):
        assert (x2 - x1) * (y2 - y1) > SMALL_BOX


@pytest.mark.parametrize('case', [SMALL, LARGE, ODD], ids=['small-box', 'large-box', 'whole'])
@pytest.mark.parametrize('layout', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.float64])
def test_gather_into_the_box_is_bit_identical_to_interpolate(case, layout, dtype):
    (h, w), (x1, y1, x2, y2) = case
    src = special_batch(3, 2, h, w, dtype, seed=1)
    base = special_batch(3, 2, h, w, dtype, seed=2)
    out = base.clone().contiguous(memory_format=layout)
    resize_fill_nearest_(out[..., y1:y2, x1:x2], src)
    expect = base.clone()
    expect[..., y1:y2, x1:x2] = F.interpolate(src, size=(y2 - y1, x2 - x1), mode='nearest')
    assert torch.equal(bits(out), bits(expect))


def test_small_boxes_reuse_their_index_table_and_large_ones_do_not_keep_one():
    resize_fill.flat_index.cache_clear()
    (h, w), (x1, y1, x2, y2) = SMALL
    src = torch.randn(2, 3, h, w)
    for _ in range(3):
        resize_fill_nearest_(torch.zeros(2, 3, h, w)[..., y1:y2, x1:x2], src)
    info = resize_fill.flat_index.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    (h, w), (x1, y1, x2, y2) = LARGE
    resize_fill_nearest_(torch.zeros(2, 3, h, w)[..., y1:y2, x1:x2], torch.randn(2, 3, h, w))
    assert resize_fill.flat_index.cache_info().currsize == 1


def test_a_non_contiguous_history_and_another_dtype_still_give_the_interpolated_box():
    (h, w), (x1, y1, x2, y2) = LARGE
    wide = torch.randn(2, 3, h, 2 * w)
    src = wide[..., ::2]  # not contiguous: the plane view is a copy, the result the same
    out = torch.zeros(2, 3, h, w)
    resize_fill_nearest_(out[..., y1:y2, x1:x2], src)
    assert torch.equal(out[..., y1:y2, x1:x2],
                       F.interpolate(src, size=(y2 - y1, x2 - x1), mode='nearest'))
    src64 = torch.randn(2, 3, h, w, dtype=torch.float64)  # other dtype: gather, then cast
    out = torch.zeros(2, 3, h, w)
    resize_fill_nearest_(out[..., y1:y2, x1:x2], src64)
    assert torch.equal(out[..., y1:y2, x1:x2],
                       F.interpolate(src64, size=(y2 - y1, x2 - x1), mode='nearest').float())


def test_the_cached_tables_work_after_inference_mode():
    resize_fill.flat_index.cache_clear()
    (h, w), (x1, y1, x2, y2) = SMALL
    src = torch.randn(2, 3, h, w)
    with torch.inference_mode():
        resize_fill_nearest_(torch.zeros(2, 3, h, w)[..., y1:y2, x1:x2], src)
    out = torch.zeros(2, 3, h, w, requires_grad=False)
    resize_fill_nearest_(out[..., y1:y2, x1:x2], src)
    assert torch.equal(out[..., y1:y2, x1:x2],
                       F.interpolate(src, size=(y2 - y1, x2 - x1), mode='nearest'))


def reference_history(prev_x, prev_y, x, y, ok):
    """What the device path computes (torch.where on the 0-d verdict)."""
    if prev_x is None or prev_x.shape != x.shape:
        prev_x, prev_y = x.new_zeros(()), y.new_full((), 1. / y.size(1))
    return torch.where(ok, x, prev_x), torch.where(ok, y, prev_y)


@pytest.mark.parametrize('poison', [None, float('nan'), float('inf'), 3e38])
def test_the_host_verdict_keeps_what_torch_where_keeps(poison):
    aug = RecursiveMixBatchAugment()
    aug.sample_box = lambda h, w: (2, 3, 12, 9)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(4, 3, 16, 16, generator=g) for _ in range(4)]
    ys = [F.one_hot(torch.arange(4) % 5, 5).float() for _ in range(4)]
    if poison is not None:
        xs[2][1, 0, 0, :2] = poison  # 3e38 twice overflows the sum: rejected as before
    prev_x = prev_y = None
    for x, y in zip(xs, ys):
        out, score = aug(x, y)
        x_p, y_p, ok = aug._pending
        assert bool(ok) == bool(torch.isfinite(out.sum()))
        expect_x, expect_y = reference_history(prev_x, prev_y, x_p.clone(), y_p.clone(), ok)
        assert torch.equal(bits(aug.history_inputs), bits(expect_x))
        assert torch.equal(aug.history_scores, expect_y)
        prev_x, prev_y = aug.history_inputs.clone(), aug.history_scores.clone()
    if poison is not None:  # the poisoned batch never became the history
        assert torch.isfinite(aug.history_inputs).all()


def test_a_first_batch_rejected_on_the_host_leaves_a_blank_history():
    aug = RecursiveMixBatchAugment()
    x = torch.randn(2, 1, 8, 8)
    x[0, 0, 0, 0] = float('nan')
    aug(x, F.one_hot(torch.tensor([0, 3]), 4).float())
    assert torch.equal(aug.history_inputs, torch.zeros(2, 1, 8, 8))
    assert torch.equal(aug.history_scores, torch.full((2, 4), 0.25))


def test_the_owners_verdict_is_applied_on_the_host_too():
    aug = RecursiveMixBatchAugment()
    aug.check_finite = False
    first = torch.randn(2, 1, 8, 8)
    first_y = F.one_hot(torch.tensor([0, 1]), 3).float()
    aug(first, first_y)
    aug.keep_history_if(torch.tensor(True))
    second = torch.randn(2, 1, 8, 8)
    aug.sample_box = lambda h, w: (0, 0, 4, 4)
    aug(second, F.one_hot(torch.tensor([2, 1]), 3).float())
    # committed at this call's start: the batch itself, no copy of it per step
    assert aug._hist_x.data_ptr() == first.data_ptr()
    aug.keep_history_if(torch.tensor(False))
    assert aug.history_inputs.data_ptr() == first.data_ptr()  # the rejected second: not kept
    assert torch.equal(aug.history_scores, first_y)


def test_a_seeded_run_pastes_what_the_reference_algorithm_pastes():
    """Box draws, pixels and labels of a seeded sequence against a direct implementation of
    the algorithm (F.interpolate nearest, lerp of the scores) at both benchmark sizes."""
    for shape in ((8, 3, 32, 32), (2, 3, 224, 224)):
        np.random.seed(3)
        aug = RecursiveMixBatchAugment(alpha=0.5)
        g = torch.Generator().manual_seed(4)
        hist_x = hist_y = None
        for step in range(6):
            x = torch.randn(shape, generator=g)
            y = F.one_hot(torch.randint(0, 10, (shape[0], ), generator=g), 10).float()
            state = np.random.get_state()
            out, score = aug(x.clone(), y)
            np.random.set_state(state)
            x1, y1, x2, y2 = aug.sample_box(*shape[-2:])
            expect, expect_y = x.clone(), y
            if hist_x is not None and x2 > x1 and y2 > y1:
                expect[..., y1:y2, x1:x2] = F.interpolate(hist_x, size=(y2 - y1, x2 - x1),
                                                          mode='nearest')
                lam = (x2 - x1) * (y2 - y1) / (shape[2] * shape[3])
                expect_y = torch.lerp(y, hist_y, lam)
                assert aug.last_box == (x1, y1, x2, y2) and aug.last_lam == lam
            assert torch.equal(bits(out), bits(expect)) and torch.equal(score, expect_y)
            hist_x, hist_y = expect, expect_y


def reference_box(alpha, height, width):
    """The box draw as first written (np.random.uniform, both clips on every side)."""
    ratio = np.sqrt(np.random.uniform(0., alpha))
    cut_w, cut_h = int(width * ratio), int(height * ratio)
    cx, cy = np.random.randint(width), np.random.randint(height)
    return (min(max(cx - cut_w // 2, 0), width), min(max(cy - cut_h // 2, 0), height),
            min(max(cx + cut_w // 2, 0), width), min(max(cy + cut_h // 2, 0), height))


@pytest.mark.parametrize('alpha', [0.5, 1.0, 0.01, np.float32(0.3)])
def test_the_box_draw_gives_the_first_formulas_boxes_from_the_same_stream(alpha):
    """alpha * random_sample() is uniform(0, alpha) bit for bit, one clip per side the same
    box: seeded runs keep their boxes, and the stream advances by the same draws."""
    aug = RecursiveMixBatchAugment()
    aug.alpha = alpha  # also an unchecked numpy scalar set after the build
    for height, width in ((32, 32), (224, 224), (7, 5), (1, 1), (2, 97)):
        np.random.seed(11)
        got = [aug.sample_box(height, width) for _ in range(3000)]
        after = np.random.random_sample()
        np.random.seed(11)
        expect = [reference_box(alpha, height, width) for _ in range(3000)]
        assert got == expect and after == np.random.random_sample()
        assert all(type(v) is int for v in got[0])


def strided_inputs(kind, shape, seed):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    if kind == 'channels_last':
        return x.contiguous(memory_format=torch.channels_last)
    if kind == 'offset_view':  # a view into a larger batch: storage offset, row stride > W
        n, c, h, w = shape
        big = torch.zeros(n, c, h + 3, w + 5)
        big[:, :, 2:2 + h, 3:3 + w] = x
        return big[:, :, 2:2 + h, 3:3 + w]
    return x


@pytest.mark.parametrize('kind', ['contiguous', 'channels_last', 'offset_view'])
@pytest.mark.parametrize('mode', [dict(), dict(interpolation='bilinear'), dict(resize=False)])
def test_the_box_view_of_any_layout_is_the_sliced_box(kind, mode):
    shape, box = (3, 2, 20, 24), (5, 3, 19, 15)
    aug = RecursiveMixBatchAugment(**mode)
    aug.sample_box = lambda h, w: box
    hist = strided_inputs(kind, shape, 0)
    aug(hist.clone(), F.one_hot(torch.arange(3), 4).float())
    hist_x = aug.history_inputs.clone()
    x = strided_inputs(kind, shape, 1)
    expect = x.clone()
    out, _ = aug(x, F.one_hot(torch.arange(3), 4).float())
    x1, y1, x2, y2 = box
    if mode.get('resize', True):
        kw = dict(mode=mode.get('interpolation', 'nearest'))
        if kw['mode'] == 'bilinear':
            kw['align_corners'] = True
        expect[:, :, y1:y2, x1:x2] = F.interpolate(hist_x, size=(y2 - y1, x2 - x1), **kw)
    else:
        expect[:, :, y1:y2, x1:x2] = hist_x[:, :, y1:y2, x1:x2]
    assert out is x and torch.equal(bits(out), bits(expect))
