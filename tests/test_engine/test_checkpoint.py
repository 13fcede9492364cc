"""Weights-only loading of MMEngine checkpoints after ``import mmrm`` (torch >= 2.6).

A real Runner checkpoint (numpy scalars, HistoryBuffer, SGD state, schedulers) must load with
torch's default ``torch.load`` and through MMEngine, a Runner must resume from it, and a
checkpoint carrying a ``__reduce__`` payload must still be refused without running it.
"""
import io
import pickle

import numpy as np
import pytest
import torch

import mmrm  # noqa: F401  (registers the safe globals)
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner, load_checkpoint

from mmrm.engine import register_safe_globals, safe_globals_list
from tests.utils import tiny_cls_config

TORCH_26 = tuple(int(x) for x in torch.__version__.split('.')[:2]) >= (2, 6)
needs_weights_only_default = pytest.mark.skipif(
    not TORCH_26, reason='torch < 2.6 does not load weights-only by default')


@pytest.fixture(scope='module')
def runner_ckpt(tiny_image_folder, tmp_path_factory):
    """A checkpoint written by a real mmpretrain Runner after 2 iterations."""
    work = tmp_path_factory.mktemp('ckpt_work')
    cfg = tiny_cls_config(tiny_image_folder, work_dir=work, max_iters=2, val=False)
    cfg['experiment_name'] = 'ckpt_safety_src'
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    path = work / 'iter_2.pth'
    assert path.exists()
    return str(path), cfg


@needs_weights_only_default
def test_runner_checkpoint_needs_the_allowlist(runner_ckpt):
    """Without mmrm's entries the checkpoint is refused: the test below is not vacuous."""
    path, _ = runner_ckpt
    saved = torch.serialization.get_safe_globals()
    try:
        torch.serialization.clear_safe_globals()
        with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
            torch.load(path)
    finally:
        torch.serialization.add_safe_globals(saved)


def test_runner_checkpoint_loads_weights_only(runner_ckpt):
    path, _ = runner_ckpt
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 2
    scalars = ckpt['message_hub']['log_scalars']
    buf = scalars['train/loss']
    assert isinstance(buf, HistoryBuffer)
    logs, counts = buf.data
    assert len(logs) == 2 and np.isfinite(buf.mean())
    # HistoryBuffer pickles its statistics methods via getattr(HistoryBuffer, name)
    assert buf._statistics_methods['mean'] is HistoryBuffer.mean
    assert isinstance(ckpt['message_hub']['runtime_info']['eta'], np.floating)
    assert any('momentum_buffer' in s for s in ckpt['optimizer']['state'].values())
    # torch's default (no weights_only argument) is the same path on torch >= 2.6
    torch.load(path, map_location='cpu')


def test_mmengine_load_checkpoint_and_resume(runner_ckpt, tmp_path):
    path, cfg = runner_ckpt
    model_cfg = Config(cfg)
    model_cfg.experiment_name = 'ckpt_safety_load'
    runner = Runner.from_cfg(model_cfg)
    ckpt = load_checkpoint(runner.model, path, map_location='cpu', strict=True)
    ref = torch.load(path, map_location='cpu')['state_dict']
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert ckpt['meta']['iter'] == 2

    # Runner resume (optimizer, schedulers, message hub) goes through torch.load too
    cfg2 = Config(cfg)
    cfg2.work_dir = str(tmp_path)
    cfg2.load_from = path
    cfg2.resume = True
    cfg2.experiment_name = 'ckpt_safety_resume'
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()  # max_iters == 2: resumes and stops
    assert runner2.iter == 2
    hub = runner2.message_hub
    assert len(hub.get_scalar('train/loss').data[0]) >= 2


def _legacy_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def test_numpy_1_and_2_spellings_both_load():
    """numpy 1 pickles ``numpy.core.multiarray.*``, numpy 2 ``numpy._core.multiarray.*``."""
    obj = {'eta': np.float64(1.5), 'arr': np.arange(6, dtype=np.int64).reshape(2, 3),
           'f32': np.float32(2.0)}
    raw = _legacy_bytes(obj)
    spellings = {
        'numpy1': raw.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'),
        'numpy2': raw.replace(b'numpy.core.multiarray', b'numpy._core.multiarray'),
    }
    assert b'numpy.core.multiarray' in spellings['numpy1']
    assert b'numpy._core.multiarray' in spellings['numpy2']
    for name, data in spellings.items():
        out = torch.load(io.BytesIO(data), weights_only=True)
        assert out['eta'] == 1.5 and isinstance(out['eta'], np.float64), name
        assert out['f32'].dtype == np.float32, name
        np.testing.assert_array_equal(out['arr'], obj['arr'])


class _Payload:
    """Unpickling this creates ``path`` (via ``builtins.open``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


class _GetattrPayload:
    """Tries to reach a non-statistics attribute through the allowlisted getattr."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def _evil_checkpoint(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(2)}, 'meta': {'x': payload}}, path)
    return path


def test_reduce_payload_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = _evil_checkpoint(tmp_path, _Payload(marker))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(torch.nn.Linear(2, 2), str(path), map_location='cpu')
    assert not marker.exists()
    # the payload is real: an unrestricted load runs it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_getattr_is_restricted(tmp_path):
    path = _evil_checkpoint(tmp_path, _GetattrPayload())
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path)


def test_registration_idempotent_and_version_gated(monkeypatch):
    first = register_safe_globals()
    n_torch = len(torch.serialization.get_safe_globals())
    assert register_safe_globals() == first
    assert len(torch.serialization.get_safe_globals()) == n_torch
    names = {e[1] if isinstance(e, tuple) else f'{e.__module__}.{e.__qualname__}'
             for e in safe_globals_list()}
    for expected in ('numpy.core.multiarray._reconstruct',
                     'numpy._core.multiarray._reconstruct',
                     'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar',
                     'numpy.ndarray', 'numpy.dtype', 'builtins.getattr',
                     'mmengine.logging.history_buffer.HistoryBuffer'):
        assert expected in names, expected
    assert 'builtins.open' not in names and 'posix.system' not in names
    monkeypatch.setattr(torch, '__version__', '2.5.1')
    assert register_safe_globals() == []
