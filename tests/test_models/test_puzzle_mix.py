"""PuzzleMix: the mask follows the saliency, labels weigh the mixed areas, transport moves the
salient block into the mask; PuzzleMixClassifier's saliency is the eval-mode input gradient."""
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
