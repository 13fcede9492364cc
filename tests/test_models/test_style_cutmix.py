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
