"""The training log's ``loss`` is the loss that is optimised.

MMEngine's ``parse_losses`` sums every key containing 'loss' and logs the sum as ``loss``; a
model that names one of its terms ``loss`` has that term overwrite the total in the log. RM's
CE was that term, so the log showed CE alone. Now RMClassifier returns ``loss_cls`` (CE) and
``loss_rm`` (the consistency term), and the log holds their sum as ``loss`` beside them. The
label-mixing comparators return one term, their head's ``loss``, which is then the total."""
import copy

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

import mmrm  # noqa: F401
from tests.test_models.test_rm_robustness import label_mixing_model
from tests.test_models.test_classifiers import data_batch


def test_a_tiny_rm_training_logs_the_total_beside_its_two_terms(tiny_rm, tmp_path):
    cfg = copy.deepcopy(tiny_rm['cfg'])
    cfg.update(work_dir=str(tmp_path), experiment_name='logged_loss',
               train_cfg=dict(by_epoch=False, max_iters=4, val_interval=100))
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
        cfg.pop(key)
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    hub = runner.message_hub
    logged = {key: np.asarray(hub.get_scalar(f'train/{key}').data[0])
              for key in ('loss', 'loss_cls', 'loss_rm')}
    assert all(len(v) == 4 for v in logged.values())
    assert (logged['loss_rm'][0] == 0 and (logged['loss_rm'][1:] > 0).all())  # lam 0, then > 0
    np.testing.assert_allclose(logged['loss'], logged['loss_cls'] + logged['loss_rm'],
                               rtol=1e-6, atol=0)
    assert (logged['loss'][1:] > logged['loss_cls'][1:]).all()  # the total, not the CE


def test_the_step_optimises_what_it_logs_as_loss():
    model = label_mixing_model('rm')
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.))
    model.train_step(data_batch(seed=1), optim)
    log = model.train_step(data_batch(seed=2), optim)
    assert set(log) == {'loss', 'loss_cls', 'loss_rm'}
    assert torch.equal(log['loss'], 0 + log['loss_cls'] + log['loss_rm'])


def test_the_comparators_log_their_one_loss_term_as_the_total():
    for kind in ('manifold-mixup', 'puzzlemix'):
        model = label_mixing_model(kind)
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.))
        log = model.train_step(data_batch(seed=1), optim)
        assert set(log) == {'loss'}, (kind, set(log))
