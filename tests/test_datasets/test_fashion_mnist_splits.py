"""Fashion-MNIST's three disjoint splits: the carve of the validation split from the training
images (pure function of labels and seed) and the registered ``FashionMNISTSplit`` dataset."""
import numpy as np
import pytest
from mmpretrain.registry import DATASETS

import mmrm  # noqa: F401
from mmrm.datasets import split_indices
from tests.utils import write_fashion_mnist

LABELS = np.repeat(np.arange(10), 20)[np.random.RandomState(3).permutation(200)]


def test_train_and_val_are_disjoint_class_balanced_and_cover_the_training_file():
    val = split_indices(LABELS, 'val', val_per_class=5)
    train = split_indices(LABELS, 'train', val_per_class=5)
    assert len(val) == 50 and len(train) == 150
    assert not set(val) & set(train) and set(val) | set(train) == set(range(200))
    assert np.bincount(LABELS[val]).tolist() == [5] * 10
    assert np.bincount(LABELS[train]).tolist() == [15] * 10
    assert list(val) == sorted(val)
    assert split_indices(LABELS, 'test').tolist() == list(range(200))


def test_the_carve_is_a_function_of_labels_and_seed():
    assert np.array_equal(split_indices(LABELS, 'val', 5), split_indices(LABELS, 'val', 5))
    assert not np.array_equal(split_indices(LABELS, 'val', 5, seed=0),
                              split_indices(LABELS, 'val', 5, seed=1))
    # more validation images keep the smaller carve (the same permutation's first ones)
    assert set(split_indices(LABELS, 'val', 5)) < set(split_indices(LABELS, 'val', 8))


def test_a_data_scarce_train_subset_is_fixed_balanced_and_outside_val():
    few = split_indices(LABELS, 'train', 5, train_per_class=3)
    assert np.bincount(LABELS[few]).tolist() == [3] * 10
    assert set(few) < set(split_indices(LABELS, 'train', 5))
    assert set(few) < set(split_indices(LABELS, 'train', 5, train_per_class=7))


@pytest.mark.parametrize('kwargs,match', [
    (dict(split='holdout'), r"split must be one of \('train', 'val', 'test'\)"),
    (dict(split='val', val_per_class=20), 'class 0 has 20 training images, fewer than '
                                          r'val_per_class=20 \+ 1'),
    (dict(split='train', train_per_class=0), 'train_per_class must be an int >= 1'),
    (dict(split='train', val_per_class=-1), 'val_per_class must be an int >= 0'),
])
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_indices(LABELS, **kwargs)


def test_the_dataset_reads_each_split_from_its_file(tmp_path):
    root = write_fashion_mnist(tmp_path / 'fm', n_train=60, n_test=10)
    from mmpretrain.datasets import FashionMNIST
    full = FashionMNIST(data_root=root, split='train', download=False)
    test_full = FashionMNIST(data_root=root, split='test', test_mode=True, download=False)
    sets = {s: DATASETS.build(dict(type='FashionMNISTSplit', data_root=root, split=s,
                                   val_per_class=2, download=False))
            for s in ('train', 'val', 'test')}
    assert [len(sets[s]) for s in ('train', 'val', 'test')] == [40, 20, 10]
    labels = [int(full.get_data_info(i)['gt_label']) for i in range(len(full))]
    for split in ('train', 'val'):
        idx = split_indices(labels, split, val_per_class=2)
        for j, i in enumerate(idx):
            assert np.array_equal(sets[split].get_data_info(j)['img'],
                                  full.get_data_info(int(i))['img'])
    assert np.array_equal(sets['test'].get_data_info(9)['img'],
                          test_full.get_data_info(9)['img'])
    with pytest.raises(ValueError, match=r"FashionMNISTSplit\(split='val'\): class 0 has 6"):
        DATASETS.build(dict(type='FashionMNISTSplit', data_root=root, split='val',
                            val_per_class=6, download=False))
