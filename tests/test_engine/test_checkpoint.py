"""Weights-only loading of MMEngine checkpoints after ``import mmrm`` (torch >= 2.6).

A real Runner checkpoint (numpy scalars, HistoryBuffer, SGD state, schedulers) must load with
torch's default ``torch.load`` and through MMEngine, a Runner must resume from it, and a
checkpoint carrying a ``__reduce__`` payload must still be refused without running it. A
missing, empty, truncated, foreign or refused file gets one message naming it and the problem.
"""
import io
import pickle
import re

import numpy as np
import pytest
import torch

import mmrm  # noqa: F401  (registers the safe globals)
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner, load_checkpoint

from mmrm.engine import (CheckpointError, check_resume_checkpoint, load_checkpoint_file,
                         register_safe_globals, safe_globals_list)
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


# ------------------------------------------------------------------ unusable checkpoint files

#: case -> what the one-line message says (after 'checkpoint <path>: ')
UNUSABLE = {
    'missing': r'no such file',
    'empty': r'the file is empty \(0 bytes\), not a checkpoint; an interrupted save or copy\?',
    'truncated': r'the file is truncated or damaged \(\d+ bytes; torch: PytorchStreamReader '
                 r'failed reading zip archive: failed finding central directory\)',
    'foreign': r"not a checkpoint: not a file torch.save wrote \(it starts with b'model = dict",
    'pickle': r'not a checkpoint: a Python pickle, but not one torch.save wrote; give the .pth',
    'untrusted': r'refused: it holds io.open, which is not a tensor, a number or one of '
                 r'the MMEngine objects a checkpoint needs; unpickling it could run code',
}


def unusable_checkpoint(case, tmp_path):
    """A checkpoint file of one of the :data:`UNUSABLE` kinds, and the full message regex."""
    path = tmp_path / f'{case}.pth'
    if case == 'empty':
        path.write_bytes(b'')
    elif case == 'truncated':
        torch.save(dict(meta=dict(iter=1), state_dict={'w': torch.zeros(256)}), path)
        path.write_bytes(path.read_bytes()[:1000])
    elif case == 'foreign':
        path.write_text("model = dict(type='ImageClassifier')\n")  # a config given by mistake
    elif case == 'pickle':  # a pickle of something else: tools/test.py --out results.pkl
        path.write_bytes(pickle.dumps([dict(pred_label=np.array([1]), gt_label=np.array([0]))]))
    elif case == 'untrusted':
        path = _evil_checkpoint(tmp_path, _Payload(tmp_path / 'pwned'))
    return str(path), rf'checkpoint {re.escape(str(path))}: {UNUSABLE[case]}'


@pytest.mark.parametrize('case', list(UNUSABLE))
def test_each_unusable_file_gets_one_message_naming_it_and_the_problem(case, tmp_path):
    path, message = unusable_checkpoint(case, tmp_path)
    for load in (load_checkpoint_file,  # mmrm's tools and converters
                 lambda p: load_checkpoint(torch.nn.Linear(2, 2), p)):  # MMEngine's loader
        with pytest.raises(CheckpointError, match=f'^{message}') as err:
            load(path)
        assert 'weights_only' not in str(err.value) and '\n' not in str(err.value)
    assert not (tmp_path / 'pwned').exists()


def test_the_errors_keep_the_types_callers_catch(tmp_path):
    """A missing file is still a FileNotFoundError, a refused pickle an UnpicklingError."""
    with pytest.raises(FileNotFoundError):
        load_checkpoint_file(str(tmp_path / 'none.pth'))
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(unusable_checkpoint('untrusted', tmp_path)[0])


@pytest.mark.parametrize('saved,what', [
    ([1, 2], 'torch.save wrote a list into it, where a checkpoint is a dict'),
    (torch.zeros(2), 'torch.save wrote a Tensor into it'),
])
def test_a_torch_file_that_holds_no_checkpoint_is_named_as_such(saved, what, tmp_path):
    path = tmp_path / 'x.pth'
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match=rf'x.pth: not a checkpoint: {what}'):
        load_checkpoint_file(str(path))


def test_resuming_from_a_model_state_dict_is_refused_pointing_to_load_from(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'w': torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match=r'cannot resume from it: it has no meta / '
                                              r'state_dict .*--cfg-options load_from='):
        check_resume_checkpoint(str(path))


def _legacy_save(obj, protocol=2) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    return buf.getvalue()


class _System:
    def __reduce__(self):
        import os
        return (os.system, ('echo pwned',))


def _zip_of_text(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / 'z.pth', 'w') as archive:
        archive.writestr('images/0.txt', 'not an image either')
    return (tmp_path / 'z.pth').read_bytes()


LEGACY = _legacy_save(dict(meta=dict(iter=1), state_dict={'w': torch.zeros(256)}))

#: file bytes -> the message after 'checkpoint <path>: '
MORE_UNUSABLE = {
    'text that is an opcode (torch: KeyError)': (
        lambda tmp: b'hello\n',
        r"not a checkpoint: not a file torch.save wrote \(it starts with b'hello\\n'\)"),
    'a zip of other files': (
        _zip_of_text, r'not a checkpoint: a zip archive, but not one torch.save wrote'),
    'a plain pickle holding os.system': (
        lambda tmp: pickle.dumps({'state_dict': _System()}, protocol=2),
        r'not a checkpoint: a Python pickle, but not one torch.save wrote \(and it holds '
        r'posix.system: unpickling it could run code from the file; it was refused, not run\)'),
    'a legacy torch file cut in its pickle': (
        lambda tmp: LEGACY[:200], r'the file is truncated or damaged \(200 bytes; its pickle '
                                  r'stops before its end\)'),
    'a legacy torch file cut in its tensors': (
        lambda tmp: LEGACY[:-50], r'the file is truncated or damaged \(\d+ bytes; torch: '
                                  r'unexpected EOF'),
    'a legacy torch file holding os.system': (
        lambda tmp: _legacy_save({'state_dict': {}, 'x': _System()}),
        r'refused: it holds posix.system, which is not a tensor'),
    'a legacy torch file of pickle protocol 4': (
        lambda tmp: _legacy_save({'state_dict': {}}, protocol=4),
        r'cannot be loaded weights-only: torch.save wrote it in the legacy \(torch < 1.6\) '
        r'format with a pickle protocol above 2'),
}


@pytest.mark.parametrize('case', list(MORE_UNUSABLE))
def test_more_unusable_files_are_named_for_what_they_are(case, tmp_path):
    make, message = MORE_UNUSABLE[case]
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(make(tmp_path))
    with pytest.raises(CheckpointError, match=rf'^checkpoint {re.escape(str(path))}: '
                                              rf'{message}') as err:
        load_checkpoint_file(str(path))
    assert 'weights_only' not in str(err.value) and '\n' not in str(err.value)
    assert 'add_safe_globals' not in str(err.value)


def test_a_legacy_checkpoint_and_a_directory(tmp_path):
    path = tmp_path / 'legacy.pth'
    path.write_bytes(LEGACY)
    assert load_checkpoint_file(str(path))['meta'] == dict(iter=1)
    with pytest.raises(CheckpointError, match='is a directory, not a checkpoint file'):
        load_checkpoint_file(str(tmp_path))


def test_the_getattr_refusal_says_why(tmp_path):
    path = _evil_checkpoint(tmp_path, _GetattrPayload())
    with pytest.raises(CheckpointError, match=r'refused: it holds getattr\(.*HistoryBuffer.*\), '
                                              r'which is not a tensor') as err:
        load_checkpoint_file(str(path))
    assert 'weights_only' not in str(err.value)


def test_resuming_from_a_url_is_left_to_mmengine():
    check_resume_checkpoint('s3://bucket/epoch_3.pth')  # no local look-up: MMEngine's scheme
