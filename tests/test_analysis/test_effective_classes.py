"""The effective class number of Fig. 8, counted by hand on constructed batches."""
import pytest
import torch
import torch.nn.functional as F

from mmrm.analysis.effective_classes import count_effective_classes, effective_classes


def _hand_batches(labels_per_step, size=8):
    from mmpretrain.structures import DataSample
    out = []
    for labels in labels_per_step:
        out.append(dict(inputs=torch.zeros(len(labels), 3, size, size, dtype=torch.uint8),
                        data_samples=[DataSample().set_gt_label(v) for v in labels]))
    return out


def test_effective_classes_hand_count(monkeypatch):
    from mmpretrain.models.utils import ClsDataPreprocessor

    from mmrm.models import RecursiveMixBatchAugment
    onehot = F.one_hot(torch.tensor([0, 2, 1]), 3).float()
    assert count_effective_classes(onehot, [1e-4, 0.5, 0.99]).tolist() == [[1] * 3] * 3

    # a fixed RM box of 4x4 on 8x8: lam = 0.25 at every step
    pre_rm = ClsDataPreprocessor(num_classes=3, batch_augments=dict(
        augments=dict(type='RecursiveMixBatchAugment')))
    aug = pre_rm.batch_augments.augments[0]
    assert isinstance(aug, RecursiveMixBatchAugment)
    monkeypatch.setattr(aug, 'sample_box', lambda h, w: (0, 0, 4, 4))
    pre_base = ClsDataPreprocessor(num_classes=3, to_onehot=True)
    thresholds = [0.05, 0.2, 0.5]
    # step 1 one-hot (no history): [1, 1, 1]; step 2: 0.25 / 0.75 -> [2, 2, 1];
    # step 3: 0.0625 / 0.1875 / 0.75 -> [3, 1, 1]
    batches = _hand_batches([[0, 0], [1, 1], [2, 2]])
    res = effective_classes(dict(baseline=pre_base, rm=pre_rm), batches, 3,
                                     thresholds)
    assert res['baseline'] == [1., 1., 1.]
    assert res['rm'] == pytest.approx([2., 4. / 3., 1.])
