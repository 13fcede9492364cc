"""RM under torch.compile as MMEngine's ``compile=True`` applies it (``model.train_step``
compiled): the same numbers as eager, and a small set of graphs that every box reuses (no
recompilation as the box changes). The ``eager`` / ``aot_eager`` backends capture the same
graphs as inductor in seconds."""
import copy

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS

import mmrm  # noqa: F401
from mmrm.analysis.compile_stats import CompileStats, compile_train_step
from .test_classifiers import data_batch, tiny_model_cfg

WARMUP = 3  # step 1 has no history, step 2 the first paste and optimizer state: both recompile


@pytest.fixture(autouse=True)
def fresh_dynamo():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def rm_cfg():
    """The tiny RM model of test_classifiers with two stages: tracing time is per layer."""
    return tiny_model_cfg(backbone=dict(num_stages=2, strides=(1, 2), dilations=(1, 1),
                                        out_indices=(1, )), head=dict(in_channels=16))


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def baseline_cfg():
    cfg = rm_cfg()
    cfg.pop('roi_head')
    cfg.update(type='ImageClassifier', train_cfg=None)
    cfg['head']['loss'] = dict(type='CrossEntropyLoss')
    return cfg


def run_steps(model, steps, stats=None, seed=0):
    """``steps`` training steps on batches and box draws fixed by ``seed``."""
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    np.random.seed(seed)
    logs, boxes = [], []
    for i in range(steps):
        data = data_batch(seed=seed * 1000 + i)
        if stats is None:
            logs.append(model.train_step(data, optim))
        else:
            with stats.step():
                logs.append(model.train_step(data, optim))
        aug = getattr(model.data_preprocessor, 'rm_augment', None)
        boxes.append(aug.last_box if aug is not None else None)
    return logs, boxes


def test_compiled_rm_steps_equal_eager_steps():
    """Same inputs, same box draws: equal losses, history and weights, step after step."""
    eager = build(rm_cfg())
    compiled = compile_train_step(copy.deepcopy(eager), backend='aot_eager')
    ref, ref_boxes = run_steps(eager, 5)
    out, boxes = run_steps(compiled, 5)
    assert boxes == ref_boxes and len(set(boxes[1:])) > 1
    for a, b in zip(out, ref):
        for key in ('loss', 'loss_rm'):
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert ref[-1]['loss_rm'] > 0  # the consistency term is live, not a zero compared to zero
    aug, ref_aug = compiled.data_preprocessor.rm_augment, eager.data_preprocessor.rm_augment
    torch.testing.assert_close(aug.history_inputs, ref_aug.history_inputs)
    torch.testing.assert_close(aug.history_scores, ref_aug.history_scores)
    torch.testing.assert_close(compiled._hist_logits, eager._hist_logits, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(compiled.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_rm_step_compiles_once_for_every_box():
    """After warm-up no step compiles anything, whatever the box; RM needs at most 4 graphs
    more than the baseline model (the mixing runs eagerly between compiled graphs)."""
    steps = WARMUP + 10
    base_stats, rm_stats = CompileStats(), CompileStats()
    run_steps(compile_train_step(build(baseline_cfg()), backend='eager'), steps, base_stats)
    rm = compile_train_step(build(rm_cfg()), backend='eager')
    _, boxes = run_steps(rm, steps, rm_stats, seed=1)
    assert len(set(boxes[WARMUP:])) >= 6  # many different boxes after warm-up
    assert rm_stats.after(WARMUP, 'recompiles') == 0, rm_stats.recompile_reasons
    assert rm_stats.after(WARMUP, 'frames') == 0
    assert rm_stats.after(WARMUP, 'graphs') == 0
    assert base_stats.after(WARMUP, 'frames') == 0
    assert rm_stats.total('graphs') <= base_stats.total('graphs') + 4, \
        (rm_stats.summary(), base_stats.summary())
