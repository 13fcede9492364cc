"""``setup_cpu_distributed`` (:mod:`mmrm.engine.distributed`) in-process: a no-op without a
launcher, a 1-rank gloo group and the CPU DDP wrapper config with one."""
import pytest
import torch
from mmengine.config import Config

from mmrm.engine import setup_cpu_distributed
from tests.utils import find_free_port


def test_setup_cpu_distributed_noop_without_launcher():
    cfg = Config(dict(launcher='none', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert setup_cpu_distributed(cfg) is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only path')
def test_setup_cpu_distributed_single_rank(monkeypatch):
    import torch.distributed as dist
    assert not dist.is_initialized()
    for k, v in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                     MASTER_PORT=str(find_free_port())).items():
        monkeypatch.setenv(k, v)
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True,
                      env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60))))
    try:
        assert setup_cpu_distributed(cfg) is True
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert dist.get_world_size() == 1
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False, find_unused_parameters=True)
        # a user wrapper keeps its settings but gets a CPU-compatible device_ids
        cfg2 = Config(dict(launcher='pytorch', model_wrapper_cfg=dict(
            type='MMDistributedDataParallel', find_unused_parameters=True)))
        assert setup_cpu_distributed(cfg2) is True  # existing group is kept
        assert cfg2.model_wrapper_cfg.device_ids is None
        assert cfg2.model_wrapper_cfg.find_unused_parameters is True
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
