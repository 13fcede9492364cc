"""StyleCutMix: the auto-gamma label rule, the content / style composition of the pixels, the
AdaIN network's weight files (missing ones are a build-time error)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrm.models import StyleCutMix
from mmrm.models.batch_augments.adain import AdaINStyleTransfer, adain

DIST = [[0.0, 0.5, 3.0], [0.5, 0.0, 1.0], [3.0, 1.0, 0.0]]


def onehot(labels):
    return F.one_hot(torch.as_tensor(labels), 3).float()


def make(**kwargs):
    cfg = dict(style_distance=DIST, random_init=True, prob=1.0, style_size=16)
    cfg.update(kwargs)
    return StyleCutMix(**cfg)


def test_auto_gamma_label_weights_and_pixels():
    torch.manual_seed(0)
    op = make(delta=2.0, r=0.7)
    box = (4, 12, 0, 8)  # y1, y2, x1, x2 on the 16-pixel style grid: 64 / 256
    op.sample_box = lambda size: box
    x = torch.randn(3, 3, 16, 16)
    y = onehot([0, 1, 2])
    index = torch.tensor([2, 0, 1])
    np.random.seed(7)
    rs = np.random.beta(1.0, 1.0)
    np.random.seed(7)
    mixed, score = op(x, y, index)
    # gamma = tanh(d(y1, y2) / delta), the distance's diagonal raised by 2
    d = torch.tensor([DIST[0][2], DIST[1][0], DIST[2][1]])
    gamma = torch.tanh(d / 2.0)
    lam_c = 64 / 256
    lam_s = gamma * lam_c + (1 - gamma) * rs
    lam = 0.7 * lam_c + 0.3 * lam_s
    assert torch.allclose(op.last_lam, lam)
    assert torch.allclose(score, lam[:, None] * y + (1 - lam[:, None]) * y[index])
    # pixels (style grid = image size: no resize): inside the box the own content with style
    # mixed by rs, outside the partner's
    x2 = x[index]
    f1 = op.net.encode(x)
    g = gamma.view(-1, 1, 1, 1)
    g12 = g * x + (1 - g) * op.net.decode(adain(f1, f1[index]))
    g21 = g * x2 + (1 - g) * op.net.decode(adain(f1[index], f1))
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[4:12, 0:8] = True
    assert torch.allclose(mixed[..., inside], (rs * x + (1 - rs) * g12)[..., inside], atol=1e-5)
    assert torch.allclose(mixed[..., ~inside], ((1 - rs) * x2 + rs * g21)[..., ~inside],
                          atol=1e-5)


def test_same_class_pairs_keep_style_by_the_raised_diagonal():
    op = make(delta=1.0)
    gamma = op.sample_gamma(onehot([1, 1]), torch.tensor([1, 0]))
    assert torch.allclose(gamma, torch.tanh(torch.tensor([2., 2.])))


def test_beta_gamma_and_prob_zero():
    op = make(gamma=0.8, style_distance=None)
    np.random.seed(0)
    g = np.random.beta(0.8, 0.8)
    np.random.seed(0)
    assert torch.allclose(op.sample_gamma(onehot([0, 1]), torch.tensor([1, 0])),
                          torch.tensor([g, g], dtype=torch.float32))
    x = torch.randn(2, 3, 8, 8)
    out, score = make(prob=0.)(x, onehot([0, 1]))
    assert out is x and torch.equal(score, onehot([0, 1]))


def test_weights_load_and_missing_files_fail_at_build(tmp_path):
    net = AdaINStyleTransfer(None, None, random_init=True)
    # vgg_normalised.pth holds the whole VGG-19: layers past relu4_1 must be ignored
    full = dict(net.encoder.state_dict())
    full['31.weight'] = torch.zeros(1)
    torch.save(full, tmp_path / 'vgg.pth')
    torch.save(net.decoder.state_dict(), tmp_path / 'dec.pth')
    torch.save(torch.tensor(DIST), tmp_path / 'dist.pt')
    op = StyleCutMix(str(tmp_path / 'vgg.pth'), str(tmp_path / 'dec.pth'),
                     style_distance=str(tmp_path / 'dist.pt'))
    for a, b in zip(op.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in op.net.parameters())
    with pytest.raises(FileNotFoundError, match=r'encoder weights .*vgg_normalised.pth'):
        StyleCutMix('checkpoints/none/vgg.pth', str(tmp_path / 'dec.pth'), style_distance=DIST)
    with pytest.raises(FileNotFoundError, match='decoder weights'):
        StyleCutMix(str(tmp_path / 'vgg.pth'), str(tmp_path / 'nope.pth'), style_distance=DIST)
    with pytest.raises(FileNotFoundError, match='styleDistanceMatrix10.pt'):
        make(style_distance=str(tmp_path / 'missing.pt'))


def test_bad_settings():
    with pytest.raises(ValueError, match=r'StyleCutMix: prob must be a number in \[0, 1\]'):
        make(prob=-0.5)
    with pytest.raises(ValueError, match=r'r must be a number in \[0, 1\]'):
        make(r=1.2)
    with pytest.raises(ValueError, match="gamma='auto' needs style_distance"):
        make(style_distance=None)
    with pytest.raises(ValueError, match='style_size must be a positive multiple of 8'):
        make(style_size=20)
    with pytest.raises(ValueError, match='labels have 5 classes'):
        make()(torch.randn(2, 3, 8, 8), F.one_hot(torch.tensor([0, 1]), 5).float())


# --------------------------------------------------------------------------------------------
# StyleCutMix against an independent reference of the StyleMix authors' code (alsdml/StyleMix
# train.py + net_cutmix.Net_D): same inputs, same network weights, same draws (chosen).
# --------------------------------------------------------------------------------------------
def ref_adain(content, style, eps=1e-5):
    """AdaIN (Huang & Belongie; pytorch-AdaIN calc_mean_std): per sample and channel, the
    spatial mean and sqrt(unbiased var + eps), in loops."""
    out = torch.empty_like(content)
    for i in range(content.size(0)):
        for ch in range(content.size(1)):
            c, s = content[i, ch].double(), style[i, ch].double()
            out[i, ch] = ((c - c.mean()) / (c.var() + eps).sqrt() * (s.var() + eps).sqrt()
                          + s.mean()).float()
    return out


def ref_style_cutmix(op, x, y, index, dist, delta, r, rs, lam_temp, cx, cy, size):
    """The authors' StyleCutMix_Auto_Gamma step: (mixed image, own-label weight per sample).
    Their rand_bbox(M.size(), 1 - lam_temp) names dim 2 'W' (cx, bbx) and dim 3 'H'."""
    d = torch.tensor(dist) + 2 * torch.eye(len(dist))  # 'Prevent diagonal lines from zero'
    labels = y.argmax(1)
    gamma = torch.tanh(d[labels, labels[index]] / delta).view(-1, 1, 1, 1)
    up = torch.nn.Upsample(size=(size, size), mode='bilinear')
    x1 = up(x)
    x2 = x1[index]
    enc = torch.nn.Sequential(*list(op.net.encoder)[:31])
    f1 = enc(x1)
    g12 = gamma * x1 + (1 - gamma) * op.net.decoder(ref_adain(f1, f1[index]))
    g21 = gamma * x2 + (1 - gamma) * op.net.decoder(ref_adain(f1[index], f1))
    cut = int(size * np.sqrt(1. - (1. - lam_temp)))
    bbx1, bbx2 = np.clip(cx - cut // 2, 0, size), np.clip(cx + cut // 2, 0, size)
    bby1, bby2 = np.clip(cy - cut // 2, 0, size), np.clip(cy + cut // 2, 0, size)
    rc = torch.zeros(1, 1, size, size)
    rc[:, :, bbx1:bbx2, bby1:bby2] = 1
    rs_map = rs * torch.ones(1, 1, size, size)
    t = torch.max(torch.zeros(1, 1, size, size), rc + rs_map - 1)
    mixed = t * x1 + (1 - rc - rs_map + t) * x2 + (rc - t) * g12 + (rs_map - t) * g21
    mixed = torch.nn.Upsample(size=tuple(x.shape[-2:]), mode='bilinear')(mixed)
    lam = (bbx2 - bbx1) * (bby2 - bby1) / float(size * size)
    lam_s = gamma.flatten() * lam + (1 - gamma.flatten()) * rs
    # loss = r * (lam CE_a + (1 - lam) CE_b) + (1 - r) * (lam_s CE_a + (1 - lam_s) CE_b)
    return mixed, r * lam + (1 - r) * lam_s


# (rs, lam_temp, cx, cy) on the 32-pixel style grid: an interior box, one clipped at the
# top-left corner, an empty box (lam_temp 0), the whole grid (lam_temp 1 at the centre)
STYLE_DRAWS = {'interior': (0.35, 0.3, 18, 9), 'corner': (0.8, 0.5, 2, 3),
               'empty': (0.6, 0.0, 10, 20), 'full': (0.25, 1.0, 16, 16)}


@pytest.mark.parametrize('box', list(STYLE_DRAWS))
def test_style_cutmix_equals_the_authors_algorithm(monkeypatch, box):
    torch.manual_seed(0)
    dist = [[0.0, 0.5, 3.0], [0.5, 0.0, 1.0], [3.0, 1.0, 0.0]]
    # the config's settings (auto gamma, delta 1, r 0.7, alpha 1, prob 0.5), style grid 32
    op = make(style_distance=dist, delta=1.0, r=0.7, alpha=1.0, prob=0.5, style_size=32)
    # variance-preserving weights, no biases: with PyTorch's default init the decoder's output
    # hardly depends on its input, and the style half of the mix would go untested
    for m in op.net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
            torch.nn.init.zeros_(m.bias)
    x = torch.randn(4, 3, 24, 24)
    y = onehot([0, 1, 2, 1])
    index = torch.tensor([2, 0, 3, 1])  # pairs of other classes and one of the same class
    rs, lam_temp, cx, cy = STYLE_DRAWS[box]
    draws = {'rand': [0.3], 'beta': [rs, lam_temp], 'randint': [cx, cy]}  # 0.3 < prob 0.5
    for name in draws:
        monkeypatch.setattr(np.random, name, lambda *a, name=name, **k: draws[name].pop(0))
    mixed, score = op(x, y, index)
    assert not any(draws.values())
    with torch.no_grad():
        expect, w = ref_style_cutmix(op, x, y, index, dist, 1.0, 0.7, rs, lam_temp, cx, cy, 32)
    torch.testing.assert_close(mixed, expect, rtol=1e-4, atol=1e-5)
    if box != 'empty' or rs > 0:  # the decoded styles reach the pixels, and differ per pair
        g = op.net.decode(adain(op.net.encode(x), op.net.encode(x)[index]))
        assert g.std() > 0.1 and (g[0] - g[1]).abs().mean() > 0.1
    torch.testing.assert_close(op.last_lam, w.float(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(score, w.float()[:, None] * y + (1 - w.float()[:, None]) *
                               y[index], rtol=1e-6, atol=1e-7)


def test_style_cutmix_not_drawn_leaves_the_batch(monkeypatch):
    op = make(prob=0.5)
    monkeypatch.setattr(np.random, 'rand', lambda *a: 0.7)  # >= prob 0.5
    x = torch.randn(2, 3, 8, 8)
    out, score = op(x, onehot([0, 1]))
    assert out is x and torch.equal(score, onehot([0, 1])) and op.last_lam is None


def test_weights_saved_from_a_wrapper_or_nested_load_and_others_are_named(tmp_path):
    net = AdaINStyleTransfer(None, None, random_init=True)
    enc, dec = net.encoder.state_dict(), net.decoder.state_dict()
    # DataParallel prefixes, and a checkpoint dict around the state dict
    torch.save({f'module.{k}': v for k, v in enc.items()}, tmp_path / 'vgg_dp.pth')
    torch.save(dict(state_dict=dec, epoch=3), tmp_path / 'dec_nested.pth')
    op = StyleCutMix(str(tmp_path / 'vgg_dp.pth'), str(tmp_path / 'dec_nested.pth'),
                     style_distance=DIST)
    for a, b in zip(op.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)
    torch.save(dec, tmp_path / 'dec.pth')
    cases = {
        'foreign.pth': ({'backbone.conv.weight': torch.zeros(1)},
                        r"encoder weights .*foreign.pth' has keys \['backbone.conv.weight'\] "
                        r'that are not layers'),
        'decoder_as_vgg.pth': (dec, r"encoder weights .*decoder_as_vgg.pth' does not match "
                                    r'the encoder'),
        'list.pth': ([torch.zeros(1)], r"holds a list, not a state dict of tensors"),
    }
    for name, (content, match) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError, match=match + r".*vgg_normalised.pth"):
            StyleCutMix(str(tmp_path / name), str(tmp_path / 'dec.pth'), style_distance=DIST)
    (tmp_path / 'text.pth').write_text('not a torch file')
    with pytest.raises(ValueError, match=r"encoder weights .*text.pth' cannot be read"):
        StyleCutMix(str(tmp_path / 'text.pth'), str(tmp_path / 'dec.pth'), style_distance=DIST)


@pytest.mark.parametrize('content,match', [
    (dict(matrix=torch.zeros(3, 3)), r"holds a dict, not the \(K, K\) class style-distance"),
    (torch.zeros(3, 3, 1), r'must be the \(K, K\) class .* got shape \(3, 3, 1\)'),
    (torch.zeros(3, 4), r'must be the \(K, K\) .* got shape \(3, 4\)'),
    (torch.tensor([[0., -1.], [1., 0.]]), r'must hold finite distances >= 0'),
])
def test_a_style_distance_file_that_is_not_a_kxk_matrix_is_named(tmp_path, content, match):
    path = tmp_path / 'dist.pt'
    torch.save(content, path)
    with pytest.raises(ValueError, match=r"StyleCutMix: style_distance '.*dist.pt' " + match):
        make(style_distance=str(path))
    (tmp_path / 'text.pt').write_text('0 1\n1 0\n')
    with pytest.raises(ValueError, match=r"text.pt' cannot be read as a weights-only torch"):
        make(style_distance=str(tmp_path / 'text.pt'))
