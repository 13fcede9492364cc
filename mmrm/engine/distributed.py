"""Distributed training and testing on a machine without CUDA.

``mmengine.dist.init_dist`` calls ``torch.cuda.set_device`` for every launcher and therefore
fails without CUDA, even with ``backend='gloo'``; and the Runner's default DDP wrapper passes
``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU module. :func:`setup_cpu_distributed`
creates the gloo process group itself from the torchrun / slurm / OpenMPI environment (the
Runner skips ``init_dist`` when a process group already exists) and points the config at a
CPU-capable DDP wrapper. With CUDA present it does nothing: MMEngine's own path (nccl) is used
unchanged. Used by ``tools/train.py`` and ``tools/test.py``.
"""
import datetime
import logging
import os
import subprocess
import sys
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.registry import MODEL_WRAPPERS

__all__ = ['setup_cpu_distributed', 'teardown_distributed', 'cuda_available']

_LAUNCHERS = ('pytorch', 'slurm', 'mpi')


def cuda_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def _env_from_launcher(launcher: str) -> tuple:
    """Return ``(rank, world_size, local_rank)`` for ``launcher`` and fill the
    ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``
    variables that the ``env://`` rendezvous reads, the way MMEngine's
    ``_init_dist_*`` functions do."""
    env = os.environ
    if launcher == 'pytorch':
        # torchrun / torch.distributed.launch set all of these.
        rank = int(env['RANK'])
        world_size = int(env['WORLD_SIZE'])
        local_rank = int(env.get('LOCAL_RANK', 0))
    elif launcher == 'slurm':
        rank = int(env['SLURM_PROCID'])
        world_size = int(env['SLURM_NTASKS'])
        local_rank = int(env.get('SLURM_LOCALID', 0))
        if 'MASTER_ADDR' not in env:
            node_list = env['SLURM_NODELIST']
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
        env.setdefault('MASTER_PORT', '29500')
    elif launcher == 'mpi':
        rank = int(env['OMPI_COMM_WORLD_RANK'])
        world_size = int(env['OMPI_COMM_WORLD_SIZE'])
        local_rank = int(env.get('OMPI_COMM_WORLD_LOCAL_RANK', 0))
        env.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in env:
            raise KeyError('The environment variable MASTER_ADDR is not set')
    else:
        raise ValueError(f'Invalid launcher type: {launcher}')
    env['RANK'] = str(rank)
    env['WORLD_SIZE'] = str(world_size)
    env['LOCAL_RANK'] = str(local_rank)
    return rank, world_size, local_rank


def _is_ddp_type(wrapper_type) -> bool:
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    return isinstance(wrapper_type, type) and issubclass(
        wrapper_type, torch.nn.parallel.DistributedDataParallel)


def _sync_bn_to_bn(node) -> int:
    """Turn every ``type='SyncBN'`` norm config under ``node`` into ``'BN'``; return how many."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _sync_bn_to_bn(value)
    return count


def setup_cpu_distributed(cfg: Config,
                          launcher: Optional[str] = None) -> bool:
    """Prepare distributed training/testing on a machine without CUDA.

    Call it after the command-line arguments are merged into ``cfg`` and before the Runner is
    built. When ``launcher`` (default: ``cfg.launcher``) is ``'none'`` or CUDA is available,
    it does nothing and returns False. Otherwise it

    0. turns SyncBN norm configs into BN (SyncBN has no CPU kernels);
    1. sets ``cfg.env_cfg.dist_cfg.backend = 'gloo'``;
    2. sets ``cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
       device_ids=None, broadcast_buffers=False, find_unused_parameters=...)`` (what the Runner
       builds by default, minus the CUDA device) unless the config has its own
       ``model_wrapper_cfg``; a user wrapper derived from ``DistributedDataParallel`` gets
       ``device_ids=None`` unless it names its own;
    3. creates the default gloo process group (``env://``) from the launcher's environment
       variables, honouring ``dist_cfg.timeout`` (seconds) like MMEngine does,

    and returns True. A process group that already exists is kept.
    """
    launcher = launcher if launcher is not None else cfg.get('launcher', 'none')
    if launcher in (None, 'none') or cuda_available():
        return False
    if launcher not in _LAUNCHERS:
        raise ValueError(f'Invalid launcher type: {launcher}')

    # SyncBN has no CPU implementation (MMEngine reverts it only for non-distributed runs):
    # every rank normalises with its own batch statistics instead.
    if _sync_bn_to_bn(cfg.get('model')) or cfg.pop('sync_bn', None):
        MMLogger.get_current_instance().warning(
            'SyncBN needs CUDA: this CPU distributed run uses per-process BN instead')

    env_cfg = cfg.get('env_cfg', None)
    if env_cfg is None:
        cfg.env_cfg = ConfigDict()
        env_cfg = cfg.env_cfg
    if env_cfg.get('dist_cfg', None) is None:
        env_cfg.dist_cfg = ConfigDict()
    env_cfg.dist_cfg.backend = 'gloo'

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = ConfigDict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif _is_ddp_type(wrapper_cfg.get('type', 'MMDistributedDataParallel')):
        wrapper_cfg.setdefault('device_ids', None)

    if torch_dist.is_available() and torch_dist.is_initialized():
        return True

    rank, world_size, _ = _env_from_launcher(launcher)
    kwargs = {
        k: v
        for k, v in env_cfg.dist_cfg.items() if k not in ('backend', 'port')
    }
    if launcher == 'slurm' and env_cfg.dist_cfg.get('port') is not None:
        os.environ['MASTER_PORT'] = str(env_cfg.dist_cfg.port)
    timeout = kwargs.get('timeout', None)
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend='gloo',
        init_method='env://',
        rank=rank,
        world_size=world_size,
        **kwargs)
    return True


def teardown_distributed(exit_process: bool = False) -> None:
    """Destroy the default process group, if any, once the ranks are done.

    With ``exit_process`` (the tools pass it for the gloo group that
    :func:`setup_cpu_distributed` made), the process then ends at once with status 0 after
    flushing its logs: torch 2.14's gloo leaves a joinable C++ thread that aborts the interpreter
    in its static destructors ("terminate called without an active exception", exit -6) in
    about one 2-process CPU run out of four here, after everything was trained and saved.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    if exit_process:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
