"""``custom_imports=dict(imports=['mmrm'])`` makes the mmrm components reachable from configs.

The subprocess test is the real one: a fresh interpreter that has not imported mmrm reads a
config file and must find the names in mmpretrain's registries.
"""
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

from tests.utils import REPO_ROOT, tool_env

CFG_TEXT = textwrap.dedent("""\
    default_scope = 'mmpretrain'
    custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)
    model = dict(type='RMClassifier')
    """)

# (registry module, registry name, component name) that mmrm promises (docs: DESIGN.md §2)
PUBLIC_NAMES = [
    ('mmpretrain.registry', 'BATCH_AUGMENTS', 'RecursiveMixBatchAugment'),
    ('mmpretrain.registry', 'MODELS', 'RMClassifier'),
    ('mmpretrain.registry', 'OPTIM_WRAPPERS', 'CPUAmpOptimWrapper'),
    # the paper's other comparators (issue #12)
    ('mmpretrain.registry', 'MODELS', 'DropBlock'),
    ('mmpretrain.registry', 'MODELS', 'DropBlockBackbone'),
    ('mmpretrain.registry', 'MODELS', 'FeatureMixClassifier'),
    ('mmpretrain.registry', 'MODELS', 'PuzzleMixClassifier'),
    ('mmpretrain.registry', 'BATCH_AUGMENTS', 'ManifoldMixup'),
    ('mmpretrain.registry', 'BATCH_AUGMENTS', 'FeatureCutMix'),
    ('mmpretrain.registry', 'BATCH_AUGMENTS', 'MoEx'),
    ('mmpretrain.registry', 'BATCH_AUGMENTS', 'PuzzleMix'),
    ('mmpretrain.registry', 'BATCH_AUGMENTS', 'StyleCutMix'),
]


def test_config_custom_imports_fresh_process(tmp_path):
    cfg_file = tmp_path / 'rm_cfg.py'
    cfg_file.write_text(CFG_TEXT)
    checks = '\n'.join(
        f"cls = importlib.import_module('{mod}').{reg}.get('{name}')\n"
        f"assert cls is not None, '{name} not in {reg}'\n"
        f"assert cls.__module__.startswith('mmrm.'), cls.__module__\n"
        for mod, reg, name in PUBLIC_NAMES)
    code = textwrap.dedent(f"""\
        import importlib, sys
        from mmengine.config import Config
        assert 'mmrm' not in sys.modules
        cfg = Config.fromfile({str(cfg_file)!r})
        assert 'mmrm' in sys.modules, 'custom_imports did not import mmrm'
        import mmrm
        assert isinstance(mmrm.__version__, str) and mmrm.__version__
        """) + checks + "print('OK', mmrm.__version__)\n"
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                          env=tool_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'OK' in proc.stdout


def test_custom_imports_failure_is_loud(tmp_path):
    """allow_failed_imports=False must raise for a missing module (no silent no-op)."""
    cfg_file = tmp_path / 'bad_cfg.py'
    cfg_file.write_text("custom_imports = dict(imports=['mmrm_no_such_module'], "
                        'allow_failed_imports=False)\n')
    with pytest.raises(ImportError):
        Config.fromfile(str(cfg_file))


@pytest.mark.parametrize('mod,reg,name', PUBLIC_NAMES)
def test_names_resolve_in_process(mod, reg, name):
    import importlib

    import mmrm
    registry = getattr(importlib.import_module(mod), reg)
    cls = registry.get(name)
    assert cls is not None, f'{name} missing from {mod}.{reg}'
    assert cls.__module__.startswith('mmrm.')
    assert mmrm.__version__


def test_scoped_name_from_other_repos():
    """mmdet/mmseg configs reach mmpretrain-registered mmrm names with the scope prefix."""
    pytest.importorskip('mmdet')
    import mmrm  # noqa: F401
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet'):
        cls = DET_MODELS.get('mmpretrain.RMClassifier')
    assert cls is not None and cls.__module__.startswith('mmrm.')


def test_repo_root_constant():
    assert (REPO_ROOT / 'mmrm' / '__init__.py').exists()


def test_classification_works_without_mmdet_and_pvt_names_the_cause():
    """A classification-only stack (mmpretrain, no mmdet / no compiled mmcv ops): mmrm imports,
    an RM model with the torchvision RoIAlign builds and trains a step, and the PVTv2 backbone
    fails when built, naming what is missing."""
    code = textwrap.dedent("""\
        import sys
        sys.modules['mmdet'] = None      # not installed
        sys.modules['mmcv.ops'] = None   # mmcv-lite: no compiled ops
        import torch
        import mmrm
        from mmpretrain.registry import MODELS
        from mmpretrain.structures import DataSample
        model = MODELS.build(dict(
            type='RMClassifier',
            backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=64,
                      loss=dict(type='CrossEntropyLoss', use_soft=True)),
            roi_head=dict(type='RoIConsistencyHead', roi_backend='torchvision'),
            train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)),
            data_preprocessor=dict(num_classes=3)))
        from mmengine.optim import OptimWrapper
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
        for step in range(2):
            data = dict(inputs=torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
                        data_samples=[DataSample().set_gt_label(i % 3) for i in range(4)])
            log = model.train_step(data, optim)
        assert torch.isfinite(log['loss_rm']) and 'mmdet' not in [
            m.split('.')[0] for m, v in sys.modules.items() if v is not None]
        try:
            MODELS.build(dict(type='PyramidVisionTransformerV2Cls', embed_dims=8))
        except ImportError as exc:
            assert 'mmdet==3.3.0' in str(exc), exc
            print('PVT refused:', exc)
        else:
            raise AssertionError('PVT built without mmdet')
        """)
    out = subprocess.run([sys.executable, '-c', code], env=tool_env(), cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'PVT refused:' in out.stdout


def test_mmrm_imports_without_the_optional_comparator_packages():
    """gco-wrapper (PuzzleMix) is imported when a PuzzleMix is built, not by ``import mmrm``;
    without it that build names the package."""
    code = textwrap.dedent("""\
        import sys
        sys.modules['gco'] = None      # gco-wrapper not installed
        import mmrm
        from mmpretrain.registry import BATCH_AUGMENTS, MODELS
        MODELS.build(dict(type='FeatureMixClassifier',
                          backbone=dict(type='ResNet_CIFAR', depth=18),
                          feature_mix=dict(type='MoEx', layers=['backbone.layer1'])))
        try:
            BATCH_AUGMENTS.build(dict(type='PuzzleMix'))
        except ImportError as exc:
            print('refused:', exc)
        """)
    out = subprocess.run([sys.executable, '-c', code], env=tool_env(), cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'refused:' in out.stdout and 'pip install gco-wrapper' in out.stdout
