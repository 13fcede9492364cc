"""CPU mixed precision (:mod:`mmrm.engine.amp`): ``setup_amp`` picks ``CPUAmpOptimWrapper``
without CUDA; the wrapper autocasts to bfloat16, skips non-finite steps and saves its scaler."""
import pytest
import torch
from mmengine.config import Config, ConfigDict

from mmrm.engine import CPUAmpOptimWrapper, setup_amp


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only path')
def test_setup_amp_cpu_and_wrapper_step():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1),
                                         clip_grad=dict(max_norm=1.0))))
    setup_amp(cfg)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=1.0)

    model = torch.nn.Linear(4, 2)
    w0 = model.weight.detach().clone()
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    seen = {}
    with wrapper.optim_context(model):
        y = model(torch.randn(3, 4))
        seen['dtype'] = y.dtype
        loss = y.float().pow(2).mean()
    wrapper.update_params(loss)
    assert seen['dtype'] == torch.bfloat16
    assert not torch.equal(model.weight, w0)
    # a step with a non-finite gradient is skipped and the loss scale backs off
    w1 = model.weight.detach().clone()
    scale = wrapper.loss_scaler.get_scale()
    with wrapper.optim_context(model):
        loss = model(torch.randn(3, 4)).float().sum()
    wrapper.backward(loss)
    model.weight.grad[0, 0] = float('inf')
    wrapper.step()
    wrapper.zero_grad()
    assert torch.equal(model.weight, w1)
    assert wrapper.loss_scaler.get_scale() == scale / 2
    state = wrapper.state_dict()
    assert 'loss_scaler' in state and state['loss_scaler']
    wrapper.load_state_dict(state)
    with pytest.raises(ValueError):
        CPUAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           dtype='float16')
    bad = Config(dict(optim_wrapper=ConfigDict(type='DeepSpeedOptimWrapper')))
    with pytest.raises(ValueError):
        setup_amp(bad)
