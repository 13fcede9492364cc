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
    val = split_indices(LABELS, 'val', val_fraction=0.25)
    train = split_indices(LABELS, 'train', val_fraction=0.25)
    assert len(val) == 50 and len(train) == 150
    assert not set(val) & set(train) and set(val) | set(train) == set(range(200))
    assert np.bincount(LABELS[val]).tolist() == [5] * 10
    assert np.bincount(LABELS[train]).tolist() == [15] * 10
    assert list(val) == sorted(val)
    assert split_indices(LABELS, 'test').tolist() == list(range(200))


def test_the_carve_is_a_function_of_labels_and_seed():
    assert np.array_equal(split_indices(LABELS, 'val', .25), split_indices(LABELS, 'val', .25))
    assert not np.array_equal(split_indices(LABELS, 'val', .25, seed=0),
                              split_indices(LABELS, 'val', .25, seed=1))
    # more validation images keep the smaller carve (the same permutation's first ones)
    assert set(split_indices(LABELS, 'val', .25)) < set(split_indices(LABELS, 'val', .4))


def test_the_default_carve_is_500_a_class_of_fashion_mnists_6000():
    labels = np.repeat(np.arange(10), 6000)
    assert np.bincount(labels[split_indices(labels, 'val')]).tolist() == [500] * 10
    assert len(split_indices(labels, 'train')) == 55000
    # tiny files: a share rounded up, one image a class always left for training
    tiny = np.arange(64) % 10
    val = split_indices(tiny, 'val')
    assert np.bincount(tiny[val], minlength=10).tolist() == [1] * 10
    assert np.bincount(np.arange(3) % 10)[split_indices(np.arange(3) % 10, 'val')].size == 0


def test_a_data_scarce_train_subset_is_fixed_balanced_and_outside_val():
    few = split_indices(LABELS, 'train', .25, train_per_class=3)
    assert np.bincount(LABELS[few]).tolist() == [3] * 10
    assert set(few) < set(split_indices(LABELS, 'train', .25))
    assert set(few) < set(split_indices(LABELS, 'train', .25, train_per_class=7))


@pytest.mark.parametrize('kwargs,match', [
    (dict(split='holdout'), r"split must be one of \('train', 'val', 'test'\)"),
    (dict(split='train', train_per_class=19), 'class 0 has 18 training images after the '
                                              'validation carve, fewer than train_per_class=19'),
    (dict(split='train', train_per_class=0), 'train_per_class must be an int >= 1'),
    (dict(split='train', val_fraction=1.0), r'val_fraction must be a number in \[0, 1\)'),
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
                                   val_fraction=1 / 3, download=False))
            for s in ('train', 'val', 'test')}
    assert [len(sets[s]) for s in ('train', 'val', 'test')] == [40, 20, 10]
    labels = [int(full.get_data_info(i)['gt_label']) for i in range(len(full))]
    for split in ('train', 'val'):
        idx = split_indices(labels, split, val_fraction=1 / 3)
        for j, i in enumerate(idx):
            assert np.array_equal(sets[split].get_data_info(j)['img'],
                                  full.get_data_info(int(i))['img'])
    assert np.array_equal(sets['test'].get_data_info(9)['img'],
                          test_full.get_data_info(9)['img'])
    with pytest.raises(ValueError, match=r"FashionMNISTSplit\(split='train'\): class 0 has 4 "):
        DATASETS.build(dict(type='FashionMNISTSplit', data_root=root, split='train',
                            val_fraction=1 / 3, train_per_class=5, download=False))


def test_image_size_upsamples_every_split_bicubic_at_load_time(tmp_path):
    """``image_size=56``: each image is OpenCV's bicubic resize of the file's 28x28 image
    (saturated uint8), in every split; None keeps the file's pixels; bad values are refused."""
    import cv2
    root = write_fashion_mnist(tmp_path, n_train=24, n_test=4)
    for split in ('train', 'val', 'test'):
        plain = DATASETS.build(dict(type='FashionMNISTSplit', data_root=root, split=split,
                                    pipeline=[]))
        big = DATASETS.build(dict(type='FashionMNISTSplit', data_root=root, split=split,
                                  image_size=56, pipeline=[]))
        assert len(big) == len(plain) > 0
        for i in range(len(plain)):
            small = plain.get_data_info(i)['img']
            assert small.shape == (28, 28)
            want = cv2.resize(small, (56, 56), interpolation=cv2.INTER_CUBIC)
            got = big.get_data_info(i)['img']
            assert got.dtype == np.uint8 and got.shape == (56, 56)
            assert np.array_equal(got, want)
            assert big.get_data_info(i)['gt_label'] == plain.get_data_info(i)['gt_label']
    for bad in (0, 2.5, True, '56'):
        with pytest.raises(ValueError, match='image_size must be an int >= 1 or None'):
            DATASETS.build(dict(type='FashionMNISTSplit', data_root=root, image_size=bad))
