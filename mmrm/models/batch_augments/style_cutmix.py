"""StyleCutMix (Hong, Lee, Kim, Jeong, Cho, Kim, Ro, "StyleMix: Separating Content and Style for
Enhanced Data Augmentation", CVPR 2021), following the authors' code (alsdml/StyleMix)."""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.registry import BATCH_AUGMENTS

from ..utils.options import check_number
from .adain import AdaINStyleTransfer, adain

DISTANCE_HINT = (
    'the (K, K) class style-distance matrix: styleDistanceMatrix10.pt / styleDistanceMatrix100.pt'
    ' of github.com/alsdml/StyleMix (CIFAR-10 / 100), or one computed for your data with '
    'tools/analysis_tools/style_distance_matrix.py')


def load_style_distance(style_distance) -> torch.Tensor:
    """The (K, K) float32 class style-distance matrix from a file or a matrix; an error naming
    the file and the expected content otherwise."""
    source = 'style_distance'
    if isinstance(style_distance, str):
        source = f'style_distance {style_distance!r}'
        if not osp.isfile(style_distance):
            raise FileNotFoundError(f'StyleCutMix: {source} not found; it must hold '
                                    f'{DISTANCE_HINT}')
        try:
            style_distance = torch.load(style_distance, map_location='cpu', weights_only=True)
        except Exception as exc:  # not a torch file, or objects weights_only refuses
            raise ValueError(f'StyleCutMix: {source} cannot be read as a weights-only torch '
                             f'file ({exc}); it must hold {DISTANCE_HINT}') from exc
    try:
        matrix = torch.as_tensor(style_distance, dtype=torch.float32).cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f'StyleCutMix: {source} holds a {type(style_distance).__name__}, not '
                         f'{DISTANCE_HINT}') from exc
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f'StyleCutMix: {source} must be {DISTANCE_HINT}, got shape '
                         f'{tuple(matrix.shape)}')
    if not torch.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError(f'StyleCutMix: {source} must hold finite distances >= 0 (gamma = '
                         'tanh(distance / delta) is a weight in [0, 1))')
    return matrix


@BATCH_AUGMENTS.register_module()
class StyleCutMix:
    r"""CutMix of content plus AdaIN mixing of style, with the auto-:math:`\gamma` label rule.

    Per call (with probability ``prob``; StyleMix Sec. 3, the authors' ``Net_D`` of
    ``net_cutmix.py``), for images :math:`x_1` (N, C, H, W) upsampled bilinearly to
    ``style_size`` and their partners :math:`x_2 = x_1[\mathrm{index}]`:

    .. math::
        g_{12} = \gamma x_1 + (1 - \gamma) D(\mathrm{AdaIN}(E(x_1), E(x_2))),\quad
        g_{21} = \gamma x_2 + (1 - \gamma) D(\mathrm{AdaIN}(E(x_2), E(x_1)))

        T = \max(0, R_c + r_s - 1),\quad
        \tilde x = T x_1 + (1 - R_c - r_s + T) x_2 + (R_c - T) g_{12} + (r_s - T) g_{21}

    with :math:`R_c` a CutMix box (area share :math:`\lambda_c`, side
    :math:`\sqrt{\lambda}` for :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`, uniform
    centre, clipped) and :math:`r_s \sim \mathrm{Beta}(\alpha, \alpha)`: inside the box the
    content of :math:`x_1`, outside that of :math:`x_2`, each with mixed style. The result is
    resized back to (H, W). Labels, per sample (the authors' loss ``r * loss_c + (1 - r) *
    loss_s`` written as one soft target):

    .. math::
        \lambda_s = \gamma \lambda_c + (1 - \gamma) r_s,\quad
        w = r \lambda_c + (1 - r) \lambda_s,\quad \tilde y = w\, y_1 + (1 - w)\, y_2

    auto-:math:`\gamma` (``gamma='auto'``): :math:`\gamma = \tanh(d(y_1, y_2) / \delta)` with
    :math:`d` the class style distance (``style_distance``, its diagonal raised by 2 as the
    authors do; for soft labels :math:`d = y_1^\top D y_2`). A number ``gamma=a`` draws
    :math:`\gamma \sim \mathrm{Beta}(a, a)` per batch instead (plain StyleCutMix).

    The images are fed to the style network in the classifier's normalisation, as the authors'
    code does. The network (:class:`AdaINStyleTransfer`) is frozen and never part of the
    model's state dict; its weights are read when this augment is built (a missing file is an
    error then, naming where to get it). Defaults are the authors' CIFAR-10 command
    (``--prob 0.5 --r 0.7 --delta 1.0``, ``alpha1`` 1.0, 224-pixel style transfer).

    Args:
        encoder_checkpoint (str): path of ``vgg_normalised.pth``.
        decoder_checkpoint (str): path of ``decoder.pth.tar``.
        style_distance (str | list): path of the (K, K) class style-distance matrix (a saved
            tensor) or the matrix itself; needed for ``gamma='auto'``.
        gamma (str | float): ``'auto'`` or a Beta parameter > 0.
        delta (float): auto-gamma temperature, > 0 (1.0 CIFAR-10, 3.0 CIFAR-100).
        r (float): weight of the content label term, in [0, 1].
        alpha (float): Beta parameter of the box ratio and of :math:`r_s`, > 0.
        prob (float): probability of mixing a batch, in [0, 1].
        style_size (int): side the images are resized to for the style network (multiple of 8).
        random_init (bool): random network weights, no files read: for tests only.

    Not cheap to compile (MMEngine's ``compile=True``): a call runs eagerly on purpose (its
    host draws of box and ratios), and with it the AdaIN encoder / decoder, the bulk of its
    cost at ``style_size`` 224; compiling gains nothing on that part.
    """

    def __init__(self,
                 encoder_checkpoint: Optional[str] = None,
                 decoder_checkpoint: Optional[str] = None,
                 style_distance: Union[str, Sequence, torch.Tensor, None] = None,
                 gamma: Union[str, float] = 'auto',
                 delta: float = 1.0,
                 r: float = 0.7,
                 alpha: float = 1.0,
                 prob: float = 0.5,
                 style_size: int = 224,
                 random_init: bool = False):
        self.prob = check_number('StyleCutMix', 'prob', prob, 0, 1)
        self.r = check_number('StyleCutMix', 'r', r, 0, 1)
        self.alpha = check_number('StyleCutMix', 'alpha', alpha, 0, low_open=True)
        self.delta = check_number('StyleCutMix', 'delta', delta, 0, low_open=True)
        if gamma != 'auto':
            gamma = check_number('StyleCutMix', "gamma (or 'auto')", gamma, 0, low_open=True)
        self.gamma = gamma
        if not isinstance(style_size, int) or style_size < 8 or style_size % 8:
            raise ValueError(f'StyleCutMix: style_size must be a positive multiple of 8 (the '
                             f'encoder downsamples 8x), got {style_size!r}')
        self.style_size = style_size
        if not isinstance(random_init, bool):
            raise ValueError(f'StyleCutMix: random_init must be True or False, got '
                             f'{random_init!r}')
        self.distance = None
        if gamma == 'auto':
            if style_distance is None:
                raise ValueError(f"StyleCutMix: gamma='auto' needs style_distance, {DISTANCE_HINT}")
            self.distance = load_style_distance(style_distance)
            # as the authors: a same-class pair must not get gamma = tanh(0) = 0
            self.distance += 2 * torch.eye(len(self.distance))
        self.net = AdaINStyleTransfer(encoder_checkpoint, decoder_checkpoint, random_init)
        #: own-label weights (N,) of the last call (None when not applied)
        self.last_lam: Optional[torch.Tensor] = None

    def applies(self) -> bool:
        """Whether this call mixes: one host draw against ``prob`` (none when it is 1)."""
        return self.prob >= 1 or np.random.rand() < self.prob

    def sample_gamma(self, scores: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(N,) style-keeping weight gamma of each pair."""
        if self.gamma != 'auto':
            return scores.new_full((scores.size(0), ), float(np.random.beta(self.gamma,
                                                                           self.gamma)))
        if scores.size(1) != len(self.distance):
            raise ValueError(f'StyleCutMix: style_distance is {tuple(self.distance.shape)} but '
                             f'the labels have {scores.size(1)} classes')
        dist = self.distance.to(scores)
        return torch.tanh(torch.einsum('nk,kl,nl->n', scores, dist, scores[index]) / self.delta)

    def sample_box(self, size: int) -> Tuple[int, int, int, int]:
        """(y1, y2, x1, x2) of a box with area share ~ Beta(alpha, alpha) (clipped)."""
        ratio = np.sqrt(np.random.beta(self.alpha, self.alpha))
        cut = int(size * ratio)
        cy, cx = np.random.randint(size), np.random.randint(size)
        y1, y2 = np.clip(cy - cut // 2, 0, size), np.clip(cy + cut // 2, 0, size)
        x1, x2 = np.clip(cx - cut // 2, 0, size), np.clip(cx + cut // 2, 0, size)
        return int(y1), int(y2), int(x1), int(x2)

    # Eager under torch.compile: traced, dynamo would specialise on each drawn lam / box.
    @torch.compiler.disable(reason='host draws of a mixing op: a graph per value if traced')
    def __call__(self, inputs: torch.Tensor, batch_score: torch.Tensor,
                 index: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        scores = batch_score.float()
        self.last_lam = None
        if not self.applies():
            return inputs, scores
        n, c, h, w = inputs.shape
        if c != 3:
            raise ValueError(f'StyleCutMix: the style network takes 3-channel images, got {c}')
        if index is None:
            index = torch.randperm(n, device=inputs.device)
        gamma = self.sample_gamma(scores, index)
        rs = float(np.random.beta(self.alpha, self.alpha))
        y1, y2, x1, x2 = self.sample_box(self.style_size)
        size = self.style_size
        self.net.to(inputs.device)
        with torch.no_grad():
            img1 = F.interpolate(inputs.float(), size=(size, size), mode='bilinear',
                                 align_corners=False)
            img2 = img1[index]
            feat1 = self.net.encode(img1)
            feat2 = feat1[index]
            g = gamma.view(-1, 1, 1, 1).to(img1)
            g12 = g * img1 + (1 - g) * self.net.decode(adain(feat1, feat2))
            g21 = g * img2 + (1 - g) * self.net.decode(adain(feat2, feat1))
            rc = img1.new_zeros(1, 1, size, size)
            rc[..., y1:y2, x1:x2] = 1
            t = (rc + rs - 1).clamp_min(0)
            mixed = t * img1 + (1 - rc - rs + t) * img2 + (rc - t) * g12 + (rs - t) * g21
            mixed = F.interpolate(mixed, size=(h, w), mode='bilinear', align_corners=False)
        lam_c = (y2 - y1) * (x2 - x1) / float(size * size)
        lam_s = gamma * lam_c + (1 - gamma) * rs
        lam = self.r * lam_c + (1 - self.r) * lam_s
        self.last_lam = lam
        lam = lam[:, None]
        return mixed.to(inputs.dtype), lam * scores + (1 - lam) * scores[index]

    def __repr__(self) -> str:
        return (f'StyleCutMix(gamma={self.gamma!r}, delta={self.delta}, r={self.r}, '
                f'alpha={self.alpha}, prob={self.prob}, style_size={self.style_size})')
