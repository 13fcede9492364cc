"""Puzzle Mix (Kim, Choo and Song, "Puzzle Mix: Exploiting Saliency and Local Statistics for
Optimal Mixup", ICML 2020), following the authors' code (snu-mllab/PuzzleMix, ``mixup.py``)."""
import functools
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.registry import BATCH_AUGMENTS

from ..utils.options import check_number, check_numbers

GCO_HINT = ('PuzzleMix solves its mask with graph cuts from the `gco` module of the PyPI '
            'package gco-wrapper (pyGCO, the library the authors use): pip install gco-wrapper')


def import_gco():
    try:
        with warnings.catch_warnings():  # gco's own numpy-alias probing warns on numpy >= 1.25
            warnings.simplefilter('ignore', FutureWarning)
            import gco
    except ImportError as exc:
        raise ImportError(GCO_HINT) from exc
    return gco


@functools.lru_cache(maxsize=16)
def transport_cost(block_num: int) -> torch.Tensor:
    """(n^2, n^2) squared distance between the blocks of an n x n grid (row-major), / (n-1)^2:
    the integer :math:`(r_i - r_j)^2 + (c_i - c_j)^2` divided once in float32, bit for bit the
    authors' ``cost_matrix`` (``cdist(..)**2`` is off by up to 2 ulps; equal distances in a row
    stay equal either way, so this is exactness, not a change of the plan seen in tests)."""
    r, c = torch.arange(block_num).repeat_interleave(block_num), torch.arange(block_num).repeat(
        block_num)
    sq = (r[:, None] - r[None, :]).pow(2) + (c[:, None] - c[None, :]).pow(2)
    return sq.float() / (block_num - 1)**2


def label_prior(n_labels: int, alpha: float, eps: float = 1e-8) -> np.ndarray:
    """-log of the binomial prior on the mixing levels 0, 1/(L-1), ..., 1 of a block (the
    authors' ``graphcut_multi``): level k takes the own image with probability alpha^(L-1-k)...
    as the binomial term C(L-1, k) alpha^(L-1-k) (1-alpha)^k."""
    from math import comb
    m = n_labels - 1
    return np.array([-np.log(comb(m, k) * alpha**(m - k) * (1 - alpha)**k + eps)
                     for k in range(n_labels)])


def neighbourhood(block_side: int, neigh_size: int) -> int:
    """Pooling side of the data-smoothness term for blocks of ``block_side`` pixels: the largest
    divisor of ``block_side`` not above ``neigh_size``.

    The pooled cells must tile each block, so that the cells on either side of a block boundary
    are whole cells of the two blocks. The authors' code pools by ``min(neigh_size, block)``,
    which divides the block side for their 2^k block counts on 32 / 64 / 224 px images, and this
    rule gives the same size there; otherwise (28 px with 7 blocks of 4, neighbourhood 3, say)
    their boundary rows would fall inside blocks and the maps come out of the wrong size.
    """
    return max(d for d in range(1, min(neigh_size, block_side) + 1) if block_side % d == 0)


def neighbour_penalty(a: torch.Tensor, b: torch.Tensor, kh: int, kw: int):
    """Mean |a - b| across each boundary between vertically / horizontally adjacent blocks, from
    the rows (columns) on either side of it: (N, n-1, n) and (N, n, n-1)."""
    pw_x = (a[:, :, :-1, :] - b[:, :, 1:, :])[:, :, kh - 1::kh, :]
    pw_y = (a[:, :, :, :-1] - b[:, :, :, 1:])[:, :, :, kw - 1::kw]
    return (F.avg_pool2d(pw_x.abs().mean(1), (1, kw)), F.avg_pool2d(pw_y.abs().mean(1), (kh, 1)))


def mask_transport(mask: torch.Tensor, saliency: torch.Tensor, eps: float) -> torch.Tensor:
    r"""The authors' greedy transport plan (``mask_transport``): (N, n^2, n^2) 0/1, entry
    (i, j) moving block i to block j, minimising :math:`\epsilon C_{ij} - s_i [m_j > 0]` for the
    block saliency s (N, n, n) within the region of the mask m (N, 1, n, n); n iterations of
    row-wise best moves with conflicts in a column resolved to the cheapest row."""
    n = mask.shape[-1]
    z = (mask > 0).float().view(-1, 1, n * n)
    cost = eps * transport_cost(n).to(mask) - saliency.reshape(-1, n * n, 1) * z
    for _ in range(n):
        plan = torch.zeros_like(cost).scatter_(-1, cost.argmin(-1, keepdim=True), 1)
        winners = (plan * cost).argmin(-2, keepdim=True)
        plan_win = torch.zeros_like(cost).scatter_(-2, winners, 1) * plan
        cost = cost + (1 - plan_win) * plan
    return plan_win


def transport_blocks(img: torch.Tensor, plan: torch.Tensor, n: int) -> torch.Tensor:
    """Move the n x n blocks of ``img`` (N, C, H, W): output block j = sum_i plan[i, j] * block i."""
    b, c, h, w = img.shape
    bh, bw = h // n, w // n
    blocks = img.view(b, c, n, bh, n, bw).permute(0, 1, 2, 4, 3, 5).reshape(b, c, n * n, bh, bw)
    moved = torch.einsum('bij,bcipq->bcjpq', plan.to(img), blocks)
    return moved.view(b, c, n, n, bh, bw).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


@BATCH_AUGMENTS.register_module()
class PuzzleMix:
    r"""Saliency-guided mixing with a graph-cut mask and optimal transport of blocks.

    Needs the input-gradient saliency :math:`s = \sqrt{\mathrm{mean}_c (\partial \ell /
    \partial x)^2}` of the batch, which :class:`PuzzleMixClassifier` computes with an extra
    forward/backward pass. Per call, as the authors' ``mixup_graph`` (paper Sec. 3-4):

    1. :math:`\alpha \sim \mathrm{Beta}(a, a)`, a grid of ``n x n`` blocks with ``n`` drawn
       from ``block_nums``, a partner ``index``;
    2. unary terms: the block-pooled saliency, normalised to sum 1 per image, of the sample
       and of its partner; pairwise terms: ``beta / n / 16`` (label smoothness) plus
       ``gamma`` times the mean colour jump across each block boundary of the mixed result
       (data smoothness, on the un-normalised image in [0, 1], pooled in cells of
       ``neigh_size`` pixels, or of the largest divisor of the block side below it:
       :func:`neighbourhood`);
       prior ``eta`` times the binomial -log prior of each of ``n_labels`` mixing levels;
    3. the mask :math:`z \in \{0, 1/(L-1), \dots, 1\}^{n \times n}` (share of the own image) by
       alpha-beta-swap graph cuts (``gco``, one solve per image: a C++ call per sample);
    4. with ``transport``, each image's salient blocks are moved into its own mask region
       (:func:`mask_transport`, cost weight ``t_eps``);
    5. :math:`\tilde x = z \odot \Pi_1 x + (1 - z) \odot \Pi_2 x_{\mathrm{index}}` (z upsampled
       nearest), :math:`\lambda = \mathrm{mean}(z)`,
       :math:`\tilde y = \lambda y + (1 - \lambda) y_{\mathrm{index}}`.

    Defaults are the authors' ImageNet settings (``cutmix/train.py``, ResNet-50, 300 epochs):
    ``alpha=1``, ``block_nums=(2, 4, 8, 16)``, ``n_labels=3``, ``neigh_size=2`` (their
    ``min(4, 2)`` for ImageNet), ``beta=1.2``, ``gamma=0.5``, ``eta=0.2``, ``transport=True``,
    ``t_eps=0.8``, ``prob=1``. Image sides must be multiples of every block count.

    Args:
        alpha (float): Beta parameter of the mixing ratio, > 0.
        prob (float): probability of mixing a batch, in [0, 1] (read by the classifier, which
            skips the saliency pass too).
        block_nums (list[int]): candidate grid sizes, each >= 2, drawn uniformly.
        n_labels (int): mixing levels per block, 2, 3 or 4.
        neigh_size (int): pooling of the image for the data-smoothness term, >= 1 (per block
            count, the largest divisor of the block side not above it).
        beta, gamma, eta (float): label smoothness, data smoothness, prior weight, each >= 0.
        transport (bool): move salient blocks into the mask region.
        t_eps (float): transport cost weight, >= 0.
    """

    def __init__(self,
                 alpha: float = 1.0,
                 prob: float = 1.0,
                 block_nums: Sequence[int] = (2, 4, 8, 16),
                 n_labels: int = 3,
                 neigh_size: int = 2,
                 beta: float = 1.2,
                 gamma: float = 0.5,
                 eta: float = 0.2,
                 transport: bool = True,
                 t_eps: float = 0.8):
        self._gco = import_gco()
        self.alpha = check_number('PuzzleMix', 'alpha', alpha, 0, low_open=True)
        self.prob = check_number('PuzzleMix', 'prob', prob, 0, 1)
        self.block_nums = check_numbers('PuzzleMix', 'block_nums', block_nums, 2, integer=True)
        if n_labels not in (2, 3, 4):
            raise ValueError(f'PuzzleMix: n_labels must be 2, 3 or 4, got {n_labels!r}')
        self.n_labels = int(n_labels)
        self.neigh_size = check_number('PuzzleMix', 'neigh_size', neigh_size, 1, integer=True)
        self.beta, self.gamma, self.eta, self.t_eps = (
            check_number('PuzzleMix', name, value, 0)
            for name, value in (('beta', beta), ('gamma', gamma), ('eta', eta), ('t_eps', t_eps)))
        if not isinstance(transport, bool):
            raise ValueError(f'PuzzleMix: transport must be True or False, got {transport!r}')
        self.transport = transport
        #: the last call's block mask (N, 1, n, n) and own-label weights (N,)
        self.last_mask: Optional[torch.Tensor] = None
        self.last_lam: Optional[torch.Tensor] = None

    def sample(self) -> Tuple[int, float]:
        r"""The draws of one call: the block count n (uniform over ``block_nums``) and the
        mixing ratio :math:`\alpha \sim \mathrm{Beta}(a, a)` of the label prior."""
        return (int(self.block_nums[np.random.randint(len(self.block_nums))]),
                float(np.random.beta(self.alpha, self.alpha)))

    def graph_cut(self, unary_own: np.ndarray, unary_partner: np.ndarray, pw_x: np.ndarray,
                  pw_y: np.ndarray, alpha: float, beta: float) -> np.ndarray:
        """Masks (N, n, n) in {0, 1/(L-1), .., 1}: the share of the own image per block
        (the authors' ``graphcut_multi``, alpha-beta swap)."""
        n = unary_own.shape[-1]
        m = self.n_labels - 1
        large = 1000 * n**2  # the authors' integer scaling of every energy term
        levels = np.linspace(0, 1, self.n_labels)  # label k keeps the own image at 1 - level
        prior = self.eta * label_prior(self.n_labels, alpha) / n**2
        # cost of label k: the saliency given up, (1 - level) of the partner's + level of own
        unary = (large * ((1 - levels) * unary_partner[..., None] +
                          levels * unary_own[..., None] + prior)).astype(np.int32)
        pw_x = (large * (pw_x + beta)).astype(np.int32)
        pw_y = (large * (pw_y + beta)).astype(np.int32)
        # Label cost (k - l)^2 / (L-1)^2 kept exact in integers: scale it and the unary by
        # (L-1)^2. The authors pass it as floats, so gco scales every term by 1e5 in int32,
        # which wraps around for a unary term above 21474 (a block with over 2^31 / 1e5 /
        # (1000 n^2) of the saliency: 8.4 % at n = 16); the same energy in integers cannot.
        smooth = ((np.arange(self.n_labels)[:, None] - np.arange(self.n_labels))**2).astype(
            np.int32)
        unary = unary * np.int32(m * m)
        labels = np.stack([  # one C++ graph-cut solve per image
            self._gco.cut_grid_graph(unary[i], smooth, pw_x[i], pw_y[i], algorithm='swap')
            for i in range(unary.shape[0])
        ])
        return 1. - labels.reshape(-1, n, n) / m

    # Eager under torch.compile: host draws and the graph cut on the host (gco).
    @torch.compiler.disable(reason='host draws and graph cut: data-dependent host work')
    def __call__(self,
                 inputs: torch.Tensor,
                 scores: torch.Tensor,
                 saliency: Optional[torch.Tensor] = None,
                 pixels: Optional[torch.Tensor] = None,
                 index: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix ``inputs`` (N, C, H, W) and ``scores`` (N, K) given ``saliency`` (N, H, W);
        ``pixels`` is the batch un-normalised to [0, 1] for the smoothness term (defaults to
        ``inputs``)."""
        if saliency is None:
            raise ValueError("PuzzleMix needs the input-gradient saliency of the batch: use it "
                             "through type='PuzzleMixClassifier', not as a plain batch augment")
        scores = scores.float()
        b, _, h, w = inputs.shape
        n, alpha = self.sample()
        if h % n or w % n:
            raise ValueError(f'PuzzleMix: the image size {h}x{w} is not a multiple of the '
                             f'block count {n} (block_nums={self.block_nums})')
        bh, bw = h // n, w // n
        if index is None:
            index = torch.randperm(b, device=inputs.device)
        pixels = inputs if pixels is None else pixels
        with torch.no_grad():
            sal = F.avg_pool2d(saliency.float()[:, None], (bh, bw))[:, 0]
            unary_own = sal / sal.sum((1, 2), keepdim=True).clamp_min(1e-12)
            unary_partner = unary_own[index]

            neigh_h = neighbourhood(bh, self.neigh_size)
            neigh_w = neighbourhood(bw, self.neigh_size)
            pooled = F.avg_pool2d(pixels.float(), (neigh_h, neigh_w))
            kh, kw = bh // neigh_h, bw // neigh_w
            beta = self.beta / n / 16
            # pw[p][q]: boundary jumps when the upper/left block shows image p and the
            # lower/right one image q (0 = partner, 1 = own)
            src = (pooled[index], pooled)
            pw = [[neighbour_penalty(src[p], src[q], kh, kw) for q in (0, 1)] for p in (0, 1)]
            pw_x = [[beta * self.gamma * pw[p][q][0] for q in (0, 1)] for p in (0, 1)]
            pw_y = [[beta * self.gamma * pw[p][q][1] for q in (0, 1)] for p in (0, 1)]
            # the authors' decomposition of the 2x2 boundary costs into unary + one pairwise
            u_own, u_partner = unary_own.clone(), unary_partner.clone()
            u_partner[:, :-1, :] += (pw_x[1][0] + pw_x[1][1]) / 2
            u_own[:, :-1, :] += (pw_x[0][1] + pw_x[0][0]) / 2
            u_partner[:, 1:, :] += (pw_x[0][1] + pw_x[1][1]) / 2
            u_own[:, 1:, :] += (pw_x[1][0] + pw_x[0][0]) / 2
            u_partner[:, :, :-1] += (pw_y[1][0] + pw_y[1][1]) / 2
            u_own[:, :, :-1] += (pw_y[0][1] + pw_y[0][0]) / 2
            u_partner[:, :, 1:] += (pw_y[0][1] + pw_y[1][1]) / 2
            u_own[:, :, 1:] += (pw_y[1][0] + pw_y[0][0]) / 2
            pair_x = (pw_x[1][0] + pw_x[0][1] - pw_x[1][1] - pw_x[0][0]) / 2
            pair_y = (pw_y[1][0] + pw_y[0][1] - pw_y[1][1] - pw_y[0][0]) / 2

            mask = self.graph_cut(*(t.cpu().numpy() for t in (u_own, u_partner, pair_x, pair_y)),
                                  alpha=alpha, beta=beta)
            mask = torch.as_tensor(mask, dtype=torch.float32, device=inputs.device)[:, None]
            own, partner = inputs, inputs[index]
            if self.transport:
                own = transport_blocks(own, mask_transport(mask, unary_own, self.t_eps), n)
                partner = transport_blocks(
                    partner, mask_transport(1 - mask, unary_partner, self.t_eps), n)
            lam = mask.view(b, -1).mean(1)
            full = F.interpolate(mask, size=(h, w), mode='nearest').to(inputs.dtype)
            mixed = full * own + (1 - full) * partner
        self.last_mask, self.last_lam = mask, lam
        lam = lam[:, None].to(scores)
        return mixed, lam * scores + (1 - lam) * scores[index]

    def __repr__(self) -> str:
        return (f'PuzzleMix(alpha={self.alpha}, prob={self.prob}, block_nums={self.block_nums}, '
                f'n_labels={self.n_labels}, neigh_size={self.neigh_size}, beta={self.beta}, '
                f'gamma={self.gamma}, eta={self.eta}, transport={self.transport}, '
                f't_eps={self.t_eps})')
