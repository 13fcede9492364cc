"""ClippedCutout: DeVries & Taylor's square, clipped at the border, on chosen centres."""
import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS

import mmrm  # noqa: F401


def ref_cutout(img, length, y, x, fill):
    """The authors' Cutout on a centre (y, x): rows / columns clip(c -+ length // 2, 0, side),
    written pixel by pixel."""
    out = img.copy()
    h, w = img.shape[:2]
    for r in range(h):
        for c in range(w):
            if y - length // 2 <= r < y + length // 2 and x - length // 2 <= c < x + length // 2:
                out[r, c] = fill
    return out


@pytest.mark.parametrize('centre', [(0, 0), (3, 30), (16, 9), (31, 31), (28, 2)])
def test_clipped_cutout_equals_the_authors_square(monkeypatch, centre):
    img = np.random.RandomState(0).randint(0, 255, (32, 32, 3)).astype(np.uint8)
    draws = [centre[0], centre[1]]
    monkeypatch.setattr(np.random, 'randint', lambda *a, **k: draws.pop(0))
    cutout = TRANSFORMS.build(dict(type='ClippedCutout', shape=16, pad_val=(125, 123, 114),
                                   prob=1.0))
    out = cutout(dict(img=img.copy()))['img']
    assert not draws
    expect = ref_cutout(img, 16, *centre, np.array([125, 123, 114], np.uint8))
    np.testing.assert_array_equal(out, expect)
    filled = (out == [125, 123, 114]).all(-1).sum()
    # clipped at the border: a corner centre keeps a quarter, an interior one all 256 pixels
    assert filled == {(0, 0): 64, (16, 9): 256, (31, 31): 81}.get(centre, filled)


def test_clipped_cutout_probability_and_grey_images(monkeypatch):
    cutout = TRANSFORMS.build(dict(type='ClippedCutout', shape=(4, 6), pad_val=0, prob=0.5))
    img = np.full((10, 12), 7, np.uint8)
    monkeypatch.setattr(np.random, 'rand', lambda *a: 0.6)  # >= prob: not applied
    assert (cutout(dict(img=img.copy()))['img'] == 7).all()
    monkeypatch.setattr(np.random, 'rand', lambda *a: 0.4)
    draws = [5, 6]
    monkeypatch.setattr(np.random, 'randint', lambda *a, **k: draws.pop(0))
    out = cutout(dict(img=img.copy()))['img']
    zero = np.zeros_like(img, dtype=bool)
    zero[3:7, 3:9] = True
    np.testing.assert_array_equal(out == 0, zero)


def test_clipped_cutout_bad_options():
    with pytest.raises(ValueError, match=r'shape must be an int >= 1'):
        TRANSFORMS.build(dict(type='ClippedCutout', shape=0))
    with pytest.raises(ValueError, match=r'prob must be a number in \[0, 1\]'):
        TRANSFORMS.build(dict(type='ClippedCutout', shape=4, prob=2))
    with pytest.raises(ValueError, match='pad_val has 2 values for an image of 3 channels'):
        TRANSFORMS.build(dict(type='ClippedCutout', shape=4, pad_val=(1, 2)))(
            dict(img=np.zeros((8, 8, 3), np.uint8)))
