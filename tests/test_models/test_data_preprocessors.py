"""RMDataPreprocessor: batch-level targets, the pasted box handed over as RMMix, the plain
evaluation path, and what it refuses."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmrm  # noqa: F401
from mmrm.structures import RMMix
from tests.test_models.test_classifiers import NUM_CLASSES, data_batch, tiny_model_cfg


@pytest.fixture(autouse=True)
def no_epoch_info():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)


@pytest.fixture
def pre():
    return MODELS.build(tiny_model_cfg()).data_preprocessor


def test_one_hot_targets_and_the_pasted_box_come_once_per_batch(pre):
    pre.rm_augment.sample_box = lambda h, w: (6, 2, 22, 10)
    d1 = data_batch(seed=1)
    labels1 = torch.cat([s.gt_label for s in d1['data_samples']])
    first = pre(d1, True)
    mix = first['rm_mix']
    assert isinstance(mix, RMMix) and mix.box == (0, 0, 0, 0) and mix.lam == 0.
    assert mix.input_hw == (32, 32) and not mix.pasted
    assert torch.equal(mix.scores, F.one_hot(labels1, NUM_CLASSES).float())
    # no per-sample field is written: the samples leave as they came
    assert all(set(s.keys()) == {'gt_label'} for s in first['data_samples'])
    hist = first['inputs'].clone()
    d2 = data_batch(seed=2)
    labels2 = torch.cat([s.gt_label for s in d2['data_samples']])
    second = pre(d2, True)
    mix = second['rm_mix']
    lam = 16 * 8 / 1024
    assert mix.box == (6, 2, 22, 10) and mix.lam == pytest.approx(lam) and mix.pasted
    expect = lam * F.one_hot(labels1, NUM_CLASSES) + (1 - lam) * F.one_hot(labels2, NUM_CLASSES)
    assert torch.allclose(mix.scores, expect.float())
    assert torch.equal(second['inputs'][..., 2:10, 6:22],
                       F.interpolate(hist, size=(8, 16), mode='nearest'))


def test_eval_is_the_plain_path_and_never_mixes(pre):
    pre(data_batch(seed=1), True)
    hist = pre.rm_augment.history_inputs
    evald = pre(data_batch(seed=3), False)
    assert 'rm_mix' not in evald
    assert torch.allclose(evald['inputs'], data_batch(seed=3)['inputs'])
    assert pre.rm_augment.history_inputs is hist


def test_soft_targets_are_stacked_and_inputs_copied_non_blocking(pre):
    assert pre._non_blocking is True
    d = data_batch(n=3)
    soft = torch.softmax(torch.randn(3, NUM_CLASSES), 1)
    for s, row in zip(d['data_samples'], soft):
        s.set_gt_score(row)
    assert torch.allclose(pre(d, True)['rm_mix'].scores, soft)


def test_multi_label_and_missing_classes_are_refused(pre):
    d = data_batch(n=2)
    d['data_samples'][0].set_gt_label([1, 2])
    with pytest.raises(ValueError, match='one gt_label per sample'):
        pre(d, True)
    cfg = tiny_model_cfg()
    cfg['data_preprocessor'] = dict(mean=[0.] * 3, std=[1.] * 3)
    # without data_preprocessor.num_classes the one-hot targets are as wide as the head's
    scores = MODELS.build(cfg).data_preprocessor(data_batch(n=2), True)['rm_mix'].scores
    assert scores.shape == (2, NUM_CLASSES)
    alone = MODELS.build(dict(type='RMDataPreprocessor'))  # no classifier, no count anywhere
    with pytest.raises(ValueError, match='set num_classes'):
        alone.batch_scores(data_batch(n=2)['data_samples'], torch.device('cpu'))


def test_a_batch_without_labels_is_not_mixed(pre):
    pre.rm_augment.last_box, pre.rm_augment.last_lam = (1, 1, 2, 2), 0.5
    out = pre(dict(inputs=torch.rand(2, 3, 32, 32)), True)
    assert 'rm_mix' not in out and pre.rm_augment.last_box == (0, 0, 0, 0)


def test_rm_preprocessor_in_a_plain_classifier_is_refused():
    cfg = tiny_model_cfg(type='ImageClassifier',
                         data_preprocessor=dict(type='RMDataPreprocessor', num_classes=5))
    cfg.pop('roi_head')
    model = MODELS.build(cfg)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    with pytest.raises(RuntimeError, match="model.type='RMClassifier'"):
        model.train_step(data_batch(), optim)


def test_samples_of_another_kind_are_refused(pre):
    from mmpretrain.structures import MultiTaskDataSample
    d = data_batch(n=2)
    d['data_samples'] = [MultiTaskDataSample(), MultiTaskDataSample()]
    with pytest.raises(TypeError, match='DataSample'):
        pre(d, True)
    assert isinstance(data_batch(n=1)['data_samples'][0], DataSample)


def demo_model(**pre):
    """The RM demo config's model (configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py)."""
    from mmrm.utils import load_config, model_config
    cfg = model_config(load_config('configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py'))
    cfg['data_preprocessor'].update(pre)
    return MODELS.build(cfg)


def fm_batch(labels):
    return dict(inputs=torch.randint(0, 256, (len(labels), 1, 28, 28), dtype=torch.uint8),
                data_samples=[DataSample().set_gt_label(v) for v in labels])


@pytest.mark.parametrize('labels,bad', [([3, 10], '10'), ([-1, 2], '-1'), ([12, 0], '12')])
def test_labels_outside_the_classes_stop_before_the_first_step(labels, bad):
    model = demo_model()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = [p.clone() for p in model.parameters()]
    model.train_step(fm_batch([1, 2]), optim)  # a good step first: the history is set
    after_good = [p.clone() for p in model.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(before, after_good))
    with pytest.raises(ValueError, match=rf'gt_label {bad} of sample \d of the batch is outside '
                                         r'the allowed 0 \.\. 9 \(num_classes=10\)'):
        model.train_step(fm_batch(labels), optim)
    assert all(torch.equal(a, b) for a, b in zip(after_good, model.parameters()))


def test_soft_targets_of_another_width_are_refused():
    model = demo_model()
    d = fm_batch([1, 2])
    for s in d['data_samples']:
        s.set_gt_score(torch.full((7, ), 1 / 7))
    with pytest.raises(ValueError, match=r"gt_score have \[7\] entries but the classifier has "
                                         r'num_classes=10'):
        model.data_preprocessor(d, True)


def test_a_preprocessor_with_other_classes_than_the_head_is_refused_at_build():
    with pytest.raises(ValueError, match=r'data_preprocessor.num_classes=12 but the classifier '
                                         r'has 10 classes .*set data_preprocessor.num_classes=10'):
        demo_model(num_classes=12)
