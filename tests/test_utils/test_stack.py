"""A config that needs what the classification-only venv of ``make demo`` lacks (mmcv's compiled
ops, mmdet, mmseg) stops with a message naming it and ``make install`` (``mmrm/utils/stack.py``),
never with a raw ImportError from inside mmcv; classification configs are never refused.

The subprocess tests see the stack as that venv has it (:func:`tests.utils.classification_only_env`:
``mmcv._ext``, ``mmdet`` and ``mmseg`` cannot be imported)."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmrm.utils import stack
from tests.utils import REPO_ROOT, classification_only_env, tool_env

DOWNSTREAM = sorted(glob.glob(str(REPO_ROOT / 'configs/downstream/mmdet/*.py'))) + sorted(
    glob.glob(str(REPO_ROOT / 'configs/downstream/mmseg/*.py')))
CLASSIFICATION = sorted(glob.glob(str(REPO_ROOT / 'configs/rm/*.py')))
MMDET_CONFIG = str(REPO_ROOT / 'configs/downstream/mmdet/atss_r50_fpn_1x_coco.py')
MMSEG_CONFIG = str(REPO_ROOT / 'configs/downstream/mmseg/pspnet_r50-d8_8xb2-80k_ade20k-512x512.py')
PVT_CONFIG = str(REPO_ROOT / 'configs/rm/pvt-v2-b1_8xb128_in1k_rm.py')
DEMO_CONFIG = str(REPO_ROOT / 'configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py')


def _expected(path):
    name = osp.basename(path)
    needs = {'ops'}
    if '/mmdet/' in path or 'pvt' in name:  # PVTv2 is MMDetection's, in mmseg configs too
        needs.add('mmdet')
    if '/mmseg/' in path:
        needs.add('mmseg')
    return needs


@pytest.mark.parametrize('path', DOWNSTREAM + [PVT_CONFIG], ids=osp.basename)
def test_config_needs_of_downstream_and_pvt_configs(path):
    needs = stack.config_needs(Config.fromfile(path))
    assert set(needs) == _expected(path), needs
    assert all(needs.values())  # each with the config key that asks for it


def test_no_classification_config_is_taken_for_a_downstream_one():
    """Every classification config but the PVTv2 ones runs in the classification venv."""
    assert len(CLASSIFICATION) > 20
    for path in CLASSIFICATION:
        needs = stack.config_needs(Config.fromfile(path))
        if 'pvt' in osp.basename(path):
            assert set(needs) == {'ops', 'mmdet'}, path
        else:
            assert needs == {}, (path, needs)


def test_config_needs_of_custom_imports_scoped_types_and_mmcv_roi():
    cfg = Config(dict(custom_imports=dict(imports=['mmseg.models', 'mmrm'])))
    assert stack.config_needs(cfg) == {'ops': "custom_imports 'mmseg.models'",
                                       'mmseg': "custom_imports 'mmseg.models'"}
    cfg = Config(dict(model=dict(type='RMClassifier', backbone=dict(type='mmdet.ResNet'),
                                 roi_head=dict(type='RoIConsistencyHead', roi_backend='mmcv'))))
    assert set(stack.config_needs(cfg)) == {'ops', 'mmdet'}
    cfg = Config(dict(model=dict(roi_head=dict(type='RoIConsistencyHead', roi_backend='mmcv'))))
    assert stack.config_needs(cfg) == {'ops': "roi_backend='mmcv'"}


def test_needs_from_exception():
    # mmengine's words for an `mmdet::` / `mmseg::` base whose package is not installed
    assert stack.needs_from_exception(
        ModuleNotFoundError('mmdet is not installed, please install mmdet manually')) == [
            'ops', 'mmdet']
    assert stack.needs_from_exception(ModuleNotFoundError(
        'mmsegmentation is not installed, please install mmsegmentation manually')) == [
            'ops', 'mmseg']
    err = ModuleNotFoundError("No module named 'mmcv._ext'", name='mmcv._ext')
    assert stack.needs_from_exception(err) == ['ops']
    try:  # found through the cause
        try:
            raise err
        except ImportError as inner:
            raise RuntimeError('building the model failed') from inner
    except RuntimeError as outer:
        assert stack.needs_from_exception(outer) == ['ops']
    # names that merely contain the library names are not taken for them
    assert stack.needs_from_exception(ImportError("No module named 'mmdet_extra'")) == []
    assert stack.needs_from_exception(ImportError("No module named 'foo.mmseg'")) == []


def test_missing_honours_blocked_imports(monkeypatch):
    assert stack.missing() == []  # the tests run in the full environment
    monkeypatch.setitem(sys.modules, 'mmcv._ext', None)
    monkeypatch.setitem(sys.modules, 'mmseg', None)
    assert stack.missing() == ['ops', 'mmseg']
    assert stack.missing(('mmdet', )) == []
    with pytest.raises(stack.StackMissing, match='make install'):
        stack.require('PVTv2', ('ops', 'mmdet'))
    with pytest.raises(KeyError, match='unknown piece'):
        stack.available('mmocr')


def test_load_config_checked_in_process(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmcv._ext', None)
    monkeypatch.setitem(sys.modules, 'mmdet', None)
    monkeypatch.setitem(sys.modules, 'mmseg', None)
    assert stack.load_config_checked(DEMO_CONFIG).model.type == 'RMClassifier'
    with pytest.raises(stack.StackMissing) as info:
        stack.load_config_checked(MMDET_CONFIG)
    text = str(info.value)
    assert "mmcv's compiled ops" in text and 'MMDetection' in text
    assert "default_scope='mmdet'" in text and '\n    make install\n' in text
    assert isinstance(info.value, ImportError)  # callers catching ImportError still do

    # without mmdet, mmengine stops parsing an `mmdet::` base: the same message, with its cause
    def no_mmdet(path, *args, **kwargs):
        raise ModuleNotFoundError('mmdet is not installed, please install mmdet manually')

    monkeypatch.setattr(stack, 'missing', lambda needs=tuple(stack.PIECES): [
        p for p in stack.PIECES if p in set(needs)])
    import mmengine.config
    monkeypatch.setattr(mmengine.config.Config, 'fromfile', staticmethod(no_mmdet))
    with pytest.raises(stack.StackMissing, match=r'(?s)parsing stopped.*make install'):
        stack.load_config_checked(MMDET_CONFIG)

    def unrelated(path, *args, **kwargs):
        raise RuntimeError('unrelated')

    monkeypatch.setattr(mmengine.config.Config, 'fromfile', staticmethod(unrelated))
    with pytest.raises(RuntimeError, match='unrelated'):  # other failures pass through
        stack.load_config_checked(MMDET_CONFIG)


def _run(args, env, timeout=300):
    return subprocess.run(args, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _assert_clear_stop(proc, *needles):
    out = proc.stdout + proc.stderr
    assert proc.returncode == stack.EXIT_STATUS, out[-3000:]
    assert '\n    make install\n' in proc.stderr, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]  # the message, not a raw ImportError
    for needle in needles:
        assert needle in proc.stderr, out[-3000:]


@pytest.mark.timeout(900)
def test_tools_stop_with_the_message_in_a_classification_venv(tmp_path):
    env = classification_only_env(tmp_path / 'site')
    train = _run([sys.executable, 'tools/train.py', MMDET_CONFIG, '--work-dir',
                  str(tmp_path / 'w')], env)
    _assert_clear_stop(train, "mmcv's compiled ops", 'MMDetection', "default_scope='mmdet'")
    test = _run([sys.executable, 'tools/test.py', MMSEG_CONFIG, 'none.pth', '--work-dir',
                 str(tmp_path / 'w')], env)
    _assert_clear_stop(test, 'MMSegmentation', "default_scope='mmseg'")
    # a RoI backend switched to mmcv on the command line is caught where it fails (no pre-check)
    roi = _run([sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', str(tmp_path / 'w'),
                '--cfg-options', 'model.roi_head.roi_backend=mmcv'], env)
    _assert_clear_stop(roi, "mmcv's compiled ops")


@pytest.mark.timeout(600)
def test_dist_train_stops_before_any_rank_starts(tmp_path):
    env = classification_only_env(tmp_path / 'site', PYTHON=sys.executable)
    proc = _run(['bash', 'tools/dist_train.sh', PVT_CONFIG, '2'], env)
    _assert_clear_stop(proc, 'PyramidVisionTransformerV2Cls')
    assert proc.stderr.count('make install') == 1  # once, not once per rank
    assert 'torch.distributed' not in proc.stdout + proc.stderr
    # and in a full environment the check passes at once (no config parsing)
    ok = _run([sys.executable, 'mmrm/utils/stack.py', PVT_CONFIG], tool_env(), timeout=60)
    assert ok.returncode == 0 and ok.stdout == ok.stderr == ''


@pytest.mark.timeout(300)
def test_uncaught_import_error_gets_the_hint_after_import_mmrm(tmp_path):
    """Another repository's tools importing mmrm (a config's custom_imports) and then building a
    detection model: the traceback ends with what is missing and the command."""
    env = classification_only_env(tmp_path / 'site')
    proc = _run([sys.executable, '-c', 'import mmrm\nfrom mmcv.ops import nms'], env)
    assert proc.returncode == 1
    assert proc.stderr.index('Traceback') < proc.stderr.index('[mmrm] ')
    assert "needs mmcv's compiled ops" in proc.stderr and '\n    make install\n' in proc.stderr
    # mmcv's own warning about "mmcv-lite" is not shown: the message above says what to do
    assert 'mmcv-lite`` if you need' not in proc.stderr
    # the full environment is left alone
    full = _run([sys.executable, '-c', 'import sys, mmrm\nprint(sys.excepthook)'], tool_env())
    assert full.stdout.strip() == '<built-in function excepthook>', full.stderr
