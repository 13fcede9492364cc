"""PuzzleMix: the mask follows the saliency, labels weigh the mixed areas, transport moves the
salient block into the mask; PuzzleMixClassifier's saliency is the eval-mode input gradient."""
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmrm.models import PuzzleMix, PuzzleMixClassifier
from mmrm.models.batch_augments.puzzle_mix import mask_transport, transport_blocks


def onehot(labels, k=3):
    return F.one_hot(torch.as_tensor(labels), k).float()


def saliency_in_block(block, n=2, side=8, low=0.01):
    """(side, side) saliency, high in block ``block`` (row-major) of an n x n grid."""
    s = torch.full((side, side), low)
    b = side // n
    r, c = divmod(block, n)
    s[r * b:(r + 1) * b, c * b:(c + 1) * b] = 1.
    return s


def test_mask_takes_each_block_from_the_more_salient_image_and_labels_match_areas():
    # no smoothness, no prior, no transport: the graph cut keeps, per block, the image that
    # loses the least saliency
    op = PuzzleMix(block_nums=(2, ), n_labels=2, beta=0., gamma=0., eta=0., transport=False)
    own = torch.ones(2, 3, 8, 8)
    own[1] *= 2
    sal = torch.stack([saliency_in_block(0), saliency_in_block(3)])
    sal[0, 4:, :4] = 0.5  # sample 0 also holds block 2 against sample 1's 0.01
    index = torch.tensor([1, 0])
    mixed, score = op(own, onehot([0, 1]), sal, index=index)
    assert torch.equal(op.last_mask[0, 0], torch.tensor([[1., 0.], [1., 0.]]))
    assert torch.equal(op.last_mask[1, 0], torch.tensor([[0., 1.], [0., 1.]]))
    # pixels: own value 1 (sample 0) / 2 (sample 1) where the mask is 1, the partner's elsewhere
    assert torch.equal(mixed[0, :, :, :4], torch.ones(3, 8, 4))
    assert torch.equal(mixed[0, :, :, 4:], torch.full((3, 8, 4), 2.))
    assert torch.allclose(op.last_lam, torch.tensor([0.5, 0.5]))
    assert torch.allclose(score, torch.tensor([[0.5, 0.5, 0], [0.5, 0.5, 0]]))


def test_label_weight_is_the_own_pixel_share():
    torch.manual_seed(0)
    np.random.seed(0)
    op = PuzzleMix(block_nums=(4, ), n_labels=3, transport=False)
    x = torch.rand(6, 3, 16, 16)
    index = torch.tensor([1, 2, 3, 4, 5, 0])
    y = onehot([0, 1, 2, 0, 1, 2])
    mixed, score = op(x, y, torch.rand(6, 16, 16), index=index)
    assert set(op.last_mask.unique().tolist()) <= {0., 0.5, 1.}  # 3 mixing levels
    full = F.interpolate(op.last_mask, size=(16, 16))
    assert torch.allclose(mixed, full * x + (1 - full) * x[index])
    lam = op.last_lam
    assert torch.allclose(full.mean((1, 2, 3)), lam)
    assert torch.allclose(score, lam[:, None] * y + (1 - lam[:, None]) * y[index])


def test_transport_moves_the_salient_block_into_the_mask_region():
    mask = torch.tensor([[[[0., 0.], [0., 1.]]]])  # own image kept in block 3 only
    sal = torch.tensor([[[0.9, 0.05], [0.03, 0.02]]])  # its salient block is block 0
    plan = mask_transport(mask, sal, eps=0.1)
    assert plan[0, 0, 3] == 1  # block 0 -> block 3
    img = torch.arange(16.).view(1, 1, 4, 4)
    moved = transport_blocks(img, plan, 2)
    assert torch.equal(moved[0, 0, 2:, 2:], img[0, 0, :2, :2])


def test_errors():
    with pytest.raises(ValueError, match='n_labels must be 2, 3 or 4'):
        PuzzleMix(n_labels=5)
    with pytest.raises(ValueError, match='block_nums must be a list of ints >= 2'):
        PuzzleMix(block_nums=(1, 2))
    with pytest.raises(ValueError, match=r'prob must be a number in \[0, 1\]'):
        PuzzleMix(prob=2)
    with pytest.raises(ValueError, match='needs the input-gradient saliency'):
        PuzzleMix()(torch.rand(2, 3, 8, 8), onehot([0, 1]))
    with pytest.raises(ValueError, match='not a multiple of the block count 16'):
        PuzzleMix(block_nums=(16, ))(torch.rand(2, 3, 8, 8), onehot([0, 1]), torch.rand(2, 8, 8))


def test_missing_gco_is_a_build_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'gco', None)
    with pytest.raises(ImportError, match='pip install gco-wrapper'):
        PuzzleMix()


def tiny_classifier(**puzzle):
    return MODELS.build(dict(
        type='PuzzleMixClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32,
                  loss=dict(type='CrossEntropyLoss', use_soft=True)),
        puzzle_mix=dict(type='PuzzleMix', block_nums=(2, 4), **puzzle),
        data_preprocessor=dict(num_classes=3, mean=[100.] * 3, std=[50.] * 3)))


def test_saliency_is_the_eval_mode_input_gradient_and_touches_nothing():
    torch.manual_seed(0)
    model = tiny_classifier()
    model.train()
    x, y = torch.randn(4, 3, 16, 16), onehot([0, 1, 2, 0])
    bn = model.backbone.layer1[0].bn1
    before = bn.running_mean.clone()
    sal = model.saliency(x, y)
    assert model.training and torch.equal(bn.running_mean, before)
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    xr = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model.head(model.extract_feat(xr)), torch.tensor([0, 1, 2, 0]))
    grad, = torch.autograd.grad(loss, xr)
    assert torch.allclose(sal, grad.pow(2).mean(1).sqrt(), atol=1e-7)


def test_classifier_train_step():
    from mmengine.optim import OptimWrapper
    model = tiny_classifier()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(inputs=torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
                data_samples=[DataSample().set_gt_label(i % 3) for i in range(4)])
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss']) and model.puzzle_mix.last_lam.shape == (4, )
    assert isinstance(model, PuzzleMixClassifier)
    with pytest.raises(TypeError, match='puzzle_mix must be a PuzzleMix'):
        MODELS.build(dict(type='PuzzleMixClassifier', backbone=dict(type='ResNet_CIFAR', depth=18),
                          puzzle_mix=dict(type='Mixup', alpha=1.0)))


# --------------------------------------------------------------------------------------------
# PuzzleMix against an independent reference of the authors' algorithm (Kim et al., ICML 2020;
# snu-mllab/PuzzleMix mixup_graph / graphcut_multi / neigh_penalty / mask_transport), written
# here with loops and numpy from the paper's energy, on the same inputs and draws.
# --------------------------------------------------------------------------------------------
def ref_cost_matrix(n):
    """The authors' transport cost: integer squared block distance, / (n-1)^2 in float32."""
    c = np.zeros((n * n, n * n), np.float32)
    for a in range(n * n):
        for b in range(n * n):
            c[a, b] = (a // n - b // n)**2 + (a % n - b % n)**2
    return c / np.float32((n - 1)**2)


def ref_plan(level, sal, eps):
    """The authors' greedy transport (n rounds): every block i picks its cheapest target j
    (cost eps * C_ij - s_i [level_j > 0]); among the blocks picking j, the cheapest wins, the
    others pay +1 there next round. First minimum on ties. Returns 0/1 (n^2, n^2)."""
    n = level.shape[0]
    z = (level.reshape(-1) > 0).astype(np.float32)
    cost = np.float32(eps) * ref_cost_matrix(n) - sal.reshape(-1, 1).astype(np.float32) * z
    rows, cols = np.arange(n * n), np.arange(n * n)
    for _ in range(n):
        pick = np.zeros_like(cost)
        pick[rows, np.argmin(cost, 1)] = 1  # numpy's argmin: the first minimum
        winner = np.argmin(pick * cost, 0)  # per column, over all rows (0 where not picked)
        win = np.zeros_like(cost)
        win[winner, cols] = pick[winner, cols]
        cost = cost + (pick - win)
    return win


def ref_move(img, plan, n):
    """Output block j = sum_i plan[i, j] * block i of ``img`` (C, H, W)."""
    c, h, w = img.shape
    bh, bw = h // n, w // n
    out = np.zeros_like(img)
    for i, j in zip(*np.nonzero(plan)):
        (ri, ci), (rj, cj) = divmod(int(i), n), divmod(int(j), n)
        out[:, rj * bh:(rj + 1) * bh, cj * bw:(cj + 1) * bw] += \
            plan[i, j] * img[:, ri * bh:(ri + 1) * bh, ci * bw:(ci + 1) * bw]
    return out


def ref_energy(pixels, sal, index, n, alpha, beta, gamma, eta, n_labels, cell):
    """The graph-cut input of every image, as the authors build it: int32 unary (N, n, n, L)
    (level k keeps the own image at 1 - k/(L-1)), int32 vertical / horizontal edge weights,
    and the normalised block saliency (N, n, n) that the transport uses. ``cell``: the side of
    the pooled cells of the data term."""
    pixels, sal = pixels.astype(np.float64), sal.astype(np.float64)
    b, ch, h, w = pixels.shape
    bh, bw = h // n, w // n
    unary = np.zeros((b, n, n))
    for i in range(b):
        for r in range(n):
            for c in range(n):
                unary[i, r, c] = sal[i, r * bh:(r + 1) * bh, c * bw:(c + 1) * bw].mean()
        unary[i] /= unary[i].sum()
    cells = np.zeros((b, ch, h // cell, w // cell))
    for y in range(h // cell):
        for x in range(w // cell):
            cells[:, :, y, x] = pixels[:, :, y * cell:(y + 1) * cell,
                                       x * cell:(x + 1) * cell].mean((2, 3))
    kh, kw = bh // cell, bw // cell  # cells per block side
    shown = {0: cells[index], 1: cells}  # 0: the partner, 1: the own image
    wgt = beta / n / 16 * gamma

    def jump(p, q, i, r, c, vertical):
        """Mean |colour step| across the boundary after block (r, c), image p before it and
        image q after it: the cell rows (columns) on either side, mean over channels."""
        if vertical:
            a = shown[p][i, :, (r + 1) * kh - 1, c * kw:(c + 1) * kw]
            z = shown[q][i, :, (r + 1) * kh, c * kw:(c + 1) * kw]
        else:
            a = shown[p][i, :, r * kh:(r + 1) * kh, (c + 1) * kw - 1]
            z = shown[q][i, :, r * kh:(r + 1) * kh, (c + 1) * kw]
        return wgt * np.abs(a - z).mean()  # = the mean over channels, then over cells

    # cost of a block SHOWING its own image = the partner saliency it hides, and vice versa;
    # each boundary's 2x2 table pw[p][q] = unary parts + one pairwise weight (the authors'
    # decomposition: E(p, q) = pw[p][q] + const)
    show_own, show_partner = unary[index].copy(), unary.copy()
    edges = {True: np.zeros((b, n - 1, n)), False: np.zeros((b, n, n - 1))}
    for i in range(b):
        for vertical in (True, False):
            for r in range(n - 1 if vertical else n):
                for c in range(n if vertical else n - 1):
                    pw = [[jump(p, q, i, r, c, vertical) for q in (0, 1)] for p in (0, 1)]
                    r2, c2 = (r + 1, c) if vertical else (r, c + 1)
                    show_own[i, r, c] += (pw[1][0] + pw[1][1]) / 2
                    show_partner[i, r, c] += (pw[0][0] + pw[0][1]) / 2
                    show_own[i, r2, c2] += (pw[0][1] + pw[1][1]) / 2
                    show_partner[i, r2, c2] += (pw[0][0] + pw[1][0]) / 2
                    edges[vertical][i, r, c] = (pw[1][0] + pw[0][1] - pw[1][1] - pw[0][0]) / 2
    m = n_labels - 1
    large = 1000 * n * n
    prior = np.array([-np.log(math.comb(m, k) * alpha**(m - k) * (1 - alpha)**k + 1e-8)
                      for k in range(n_labels)]) * eta / n**2
    own_share = 1 - np.arange(n_labels) / m
    costs = np.stack([own_share[k] * show_own + (1 - own_share[k]) * show_partner + prior[k]
                      for k in range(n_labels)], -1)
    beta_n = beta / n / 16
    return ((large * costs).astype(np.int32), (large * (edges[True] + beta_n)).astype(np.int32),
            (large * (edges[False] + beta_n)).astype(np.int32), unary)


def ref_cut(unary, edge_v, edge_h, n_labels):
    """gco's alpha-beta swap on the authors' energy: their call passes the label cost
    (i - j)^2 / (L-1)^2 as floats, so gco multiplies the int32 unary by 1e5 (edges by 1e3, the
    label cost by 100) in int32. Where that cannot overflow this is their exact call; where it
    would (a unary term above 2^31 / 1e5: large grids with peaked saliency) the same energy
    times (L-1)^2 in integers, which the overflow would have corrupted. Returns (labels,
    whether the authors' float call was used)."""
    import gco
    m = n_labels - 1
    if int(unary.max()) * 100000 < 2**31:
        label_cost = np.array([[(i - j)**2 / m**2 for j in range(n_labels)]
                               for i in range(n_labels)], np.float32)
        return gco.cut_grid_graph(unary, label_cost, edge_v, edge_h, algorithm='swap'), True
    label_cost = np.array([[(i - j)**2 for j in range(n_labels)] for i in range(n_labels)],
                          np.int32)
    return gco.cut_grid_graph(unary * np.int32(m * m), label_cost, edge_v, edge_h,
                              algorithm='swap'), False


def ref_puzzle_mix(x, pixels, sal, y, index, n, alpha, beta, gamma, eta, n_labels, cell, t_eps,
                   transport):
    """(mixed, mixed labels, mask (N, n, n), int32 unary, int32 edges, float calls) of the
    authors' algorithm (:func:`ref_cut` for the cut)."""
    unary, edge_v, edge_h, sal_blocks = ref_energy(pixels.numpy(), sal.numpy(), index.numpy(),
                                                   n, alpha, beta, gamma, eta, n_labels, cell)
    m = n_labels - 1
    x, y = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    b, _, h, w = x.shape
    masks, mixed, labels = np.zeros((b, n, n)), np.zeros_like(x), np.zeros_like(y)
    float_calls = 0
    for i in range(b):
        k, as_authors = ref_cut(unary[i], edge_v[i], edge_h[i], n_labels)
        float_calls += as_authors
        mask = 1 - k.reshape(n, n) / m
        own, partner = x[i], x[index[i]]
        if transport:
            own = ref_move(own, ref_plan(mask, sal_blocks[i].astype(np.float32), t_eps), n)
            partner = ref_move(partner, ref_plan(1 - mask, sal_blocks[index[i]].astype(
                np.float32), t_eps), n)
        full = np.kron(mask, np.ones((h // n, w // n)))
        mixed[i] = full * own + (1 - full) * partner
        labels[i] = mask.mean() * y[i] + (1 - mask.mean()) * y[index[i]]
        masks[i] = mask
    return mixed, labels, masks, unary, (edge_v, edge_h), float_calls


class RecordingGco:
    """gco with its cut_grid_graph arguments recorded."""

    def __init__(self, gco):
        self.gco, self.calls = gco, []

    def cut_grid_graph(self, *args, **kwargs):
        self.calls.append(args)
        return self.gco.cut_grid_graph(*args, **kwargs)


def puzzle_inputs(b, c, side, seed):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(b, c, side, side, generator=g)
    # smooth regions with a few edges, so the data term and the cut are not trivial
    pixels = F.interpolate(F.avg_pool2d(pixels, 4), size=(side, side), mode='nearest') * 0.7 \
        + 0.3 * pixels
    # saliency concentrated around one random point per image (as an input gradient is), so
    # that salient blocks are worth moving
    yy, xx = torch.meshgrid(torch.arange(side.__float__()), torch.arange(side.__float__()),
                            indexing='ij')
    centre = torch.rand(b, 2, generator=g) * side
    dist2 = (yy - centre[:, :1, None])**2 + (xx - centre[:, 1:, None])**2
    sal = torch.exp(-dist2 / (2 * (side / 12)**2)) + 0.02 * torch.rand(b, side, side, generator=g)
    return pixels, sal


# the configs' settings: the authors' (beta 1.2, gamma 0.5, eta 0.2, 3 labels, transport,
# t_eps 0.8) on Fashion-MNIST's 28 px (every block count, neighbourhood 4 -> the largest
# divisor of the block side) and on CIFAR / ImageNet-like 2^k grids; plus a strong data term
# so that it decides blocks, and 2 labels
CASES = [
    dict(c=1, side=28, n=n, neigh=4, beta=1.2, gamma=0.5, eta=0.2, labels=3)
    for n in (2, 4, 7, 14)
] + [
    dict(c=3, side=32, n=4, neigh=4, beta=1.2, gamma=0.5, eta=0.2, labels=3, seed=1),
    dict(c=3, side=32, n=8, neigh=2, beta=1.2, gamma=0.5, eta=0.2, labels=3),
    dict(c=3, side=32, n=4, neigh=4, beta=1.2, gamma=300., eta=0.2, labels=3, seed=1),
    dict(c=3, side=16, n=2, neigh=2, beta=1.2, gamma=0.5, eta=0.2, labels=2),
]


@pytest.mark.parametrize(
    'case', CASES, ids=lambda c: '{side}px-n{n}-neigh{neigh}-g{gamma}-L{labels}'.format(**c))
def test_puzzle_mix_equals_the_authors_algorithm(case):
    b, n = 6, case['n']
    # (inputs whose salient blocks move: the transport is compared too)
    pixels, sal = puzzle_inputs(b, case['c'], case['side'], case.get('seed', n + case['side']))
    x = (pixels - 0.4) / 0.3  # the normalised batch the network sees
    y = onehot([0, 1, 2, 0, 1, 2])
    index = torch.tensor([3, 0, 5, 1, 2, 4])
    alpha = 0.37
    op = PuzzleMix(block_nums=(n, ), n_labels=case['labels'], neigh_size=case['neigh'],
                   beta=case['beta'], gamma=case['gamma'], eta=case['eta'], transport=True,
                   t_eps=0.8)
    op.sample = lambda: (n, alpha)
    op._gco = RecordingGco(op._gco)
    mixed, score = op(x, y, sal, pixels=pixels, index=index)

    cell = max(d for d in range(1, min(case['neigh'], case['side'] // n) + 1)
               if (case['side'] // n) % d == 0)
    ref_mixed, ref_score, ref_mask, unary, (edge_v, edge_h), float_calls = ref_puzzle_mix(
        x, pixels, sal, y, index, n, alpha, case['beta'], case['gamma'], case['eta'],
        case['labels'], cell, 0.8, True)
    # the energies handed to gco: ours scales unary by (L-1)^2 to keep the label cost integer
    m2 = (case['labels'] - 1)**2
    for i, (u, smooth, pv, ph) in enumerate(op._gco.calls):
        np.testing.assert_allclose(u // m2, unary[i], atol=1, rtol=0)
        np.testing.assert_allclose(pv, edge_v[i], atol=1, rtol=0)
        np.testing.assert_allclose(ph, edge_h[i], atol=1, rtol=0)
        assert np.array_equal(smooth * 1., [[(k - j)**2 for j in range(case['labels'])]
                                            for k in range(case['labels'])])
    np.testing.assert_array_equal(op.last_mask[:, 0].numpy(), ref_mask)
    np.testing.assert_allclose(mixed.numpy(), ref_mixed, rtol=0, atol=1e-6)
    np.testing.assert_allclose(score.numpy(), ref_score, rtol=0, atol=1e-6)
    if case['side'] // n >= 7 and case['gamma'] < 1:  # the authors' own float call
        assert float_calls == b
    # the inputs exercise what is compared: mixed levels and moved blocks
    assert len(np.unique(ref_mask)) >= 2
    moved = not np.allclose(ref_mixed, [
        np.kron(ref_mask[i], np.ones((case['side'] // n, ) * 2)) * x[i].numpy() +
        (1 - np.kron(ref_mask[i], np.ones((case['side'] // n, ) * 2))) * x[index[i]].numpy()
        for i in range(b)])
    assert moved or n == 2, "no block moved: the transport is untested here"


def test_neighbourhood_tiles_every_block():
    from mmrm.models.batch_augments.puzzle_mix import neighbourhood
    # the authors' min(neigh, block) wherever it divides the block side
    for block in (1, 2, 4, 8, 16, 32, 56, 112):
        for neigh in (1, 2, 3, 4, 8):
            if block % min(neigh, block) == 0:
                assert neighbourhood(block, neigh) == min(neigh, block)
    # the Fashion-MNIST config: blocks of 14, 7, 4 and 2 px with neighbourhood 4
    assert [neighbourhood(s, 4) for s in (14, 7, 4, 2)] == [2, 1, 4, 2]
    assert neighbourhood(9, 4) == 3 and neighbourhood(10, 3) == 2


@pytest.mark.parametrize('side,blocks', [(28, (2, 4, 7, 14)), (32, (2, 4, 8, 16)), (24, (3, 6))])
def test_every_block_count_and_neighbourhood_runs(side, blocks):
    """Every block count dividing the image with neighbourhoods dividing its blocks or not (the
    cells always tile the blocks): a mask per block and labels from it, nothing out of shape."""
    pixels, sal = puzzle_inputs(2, 1, side, seed=side)
    y = onehot([0, 1])
    for n in blocks:
        for neigh in (1, 3, 4, 5):
            op = PuzzleMix(block_nums=(n, ), neigh_size=neigh, transport=False)
            op.sample = lambda n=n: (n, 0.4)
            mixed, score = op((pixels - 0.5) / 0.25, y, sal, pixels=pixels,
                              index=torch.tensor([1, 0]))
            assert op.last_mask.shape == (2, 1, n, n) and mixed.shape == (2, 1, side, side)
            assert torch.allclose(score.sum(1), torch.ones(2))
