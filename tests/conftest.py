"""pytest configuration shared by all mmrm tests.

* puts the repository root first on ``sys.path`` so ``import mmrm`` and
  ``from tests.utils import ...`` work from a checkout without installing;
* fixtures: ``tiny_image_folder`` (a session-wide synthetic ImageNet-style folder, see
  :func:`tests.utils.make_image_folder`), ``tiny_rm`` (a tiny RM config and data, see
  :func:`tests.utils.make_tiny_rm_setup`) and ``free_port``;
* one intra-op torch thread a process (see :func:`_one_intra_op_thread`);
* memoises, per test process, the two lookups of MMEngine's ``Config.fromfile`` that depend
  only on the installed packages (see :func:`_memoise_package_config_lookups`) and yapf's
  formatting of a config text (:func:`_memoise_config_formatting`).

Tests mirror the package: ``tests/test_models`` for ``mmrm/models``, ``tests/test_engine``,
``tests/test_analysis``, ``tests/test_experiments``, ``tests/test_visualization``,
``tests/test_utils``, and ``tests/test_tools`` / ``tests/test_configs`` for the command-line
tools and the configs.
"""
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _bind_local_tests_package():
    """Make ``tests`` mean this directory.

    ``model-index`` (pulled in by openmim / mmsegmentation) installs a top-level *regular*
    package named ``tests`` into site-packages; it wins over this directory (a namespace
    package without ``__init__.py``) whatever the order of ``sys.path``, and
    ``from tests.utils import ...`` would fail.
    """
    local = str(Path(__file__).resolve().parent)
    mod = sys.modules.get('tests')
    if mod is not None and local in list(getattr(mod, '__path__', [])):
        return
    spec = importlib.machinery.ModuleSpec('tests', None, is_package=True)
    spec.submodule_search_locations = [local]
    sys.modules['tests'] = importlib.util.module_from_spec(spec)


_bind_local_tests_package()


def _one_intra_op_thread():
    """One intra-op thread in every test process and the tools it starts (unless
    ``OMP_NUM_THREADS`` says otherwise): the suite runs on two xdist workers over two cores,
    where two OpenMP threads a process spin-wait on each other and tiny models run 1.6x
    (detection configs) to ~20x (deep CIFAR nets) slower. Tests that measure threads pass
    their own count."""
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


_one_intra_op_thread()


def _memoise_package_config_lookups():
    """A config whose ``_base_`` names another package's experiment
    (``mmpretrain::resnet/resnet50_8xb32_in1k.py``, ``mmdet::atss/...``) makes MMEngine read
    every metafile that package lists (~80 YAML files for mmpretrain) and reload
    ``pkg_resources`` to ask whether it is installed, on every parse: ~0.1 s a config, and
    the suite parses hundreds (the stack test of every classification config: 24 s -> 9 s).
    Both answers are fixed while the installed packages are, so each test process computes
    them once per package: the same metainfo, and MMEngine's ValueError for a name no metafile
    lists (which is how MMEngine tells a base file, ``_base_/...``, from an experiment). The
    index is MMEngine's loop, once; it skips a model without ``Config`` as MMEngine does, only
    without MMEngine's warning about it."""
    import functools

    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    from mmengine.fileio import load

    @functools.lru_cache(maxsize=None)
    def metafile_index(package_path):
        index = {}  # the first weight of a config wins, as in MMEngine
        mim = Path(package_path, '.mim')
        for meta_path in load(str(mim / 'model-index.yml'))['Import']:
            for model_cfg in load(str(mim / meta_path))['Models']:
                if 'Config' in model_cfg:
                    index.setdefault(model_cfg['Config'].partition('/')[-1], model_cfg)
        return index

    def cfg_metainfo(package_path, cfg_path):
        index = metafile_index(package_path)
        if cfg_path not in index:  # MMEngine's error: a base (`_base_/...`) is looked up so
            raise ValueError(f'Expected configs: {index.keys()}, but got {cfg_path}')
        return index[cfg_path]

    installed = functools.lru_cache(maxsize=None)(config_module.is_installed)
    config_utils._get_cfg_metainfo = cfg_metainfo
    config_module.is_installed = installed


_memoise_package_config_lookups()


def _memoise_config_formatting():
    """``Config.pretty_text`` runs yapf over the whole config (~0.3 s for a classification
    config on this CPU), and a Runner asks for it three or four times (the dumped config, the
    logged one, the visualizer's copy): about a third of an in-process smoke run. The text is
    a function of the config's unformatted text and the style, so each test process formats a
    text once; every caller gets yapf's own output, and a text yapf cannot format still raises
    in MMEngine's ``except``."""
    from mmengine.config import config as config_module
    format_code = config_module.FormatCode
    formatted = {}

    def memo_format_code(text, style_config=None, **kwargs):
        key = (text, repr(style_config), repr(sorted(kwargs.items())))
        if key not in formatted:
            formatted[key] = format_code(text, style_config=style_config, **kwargs)
        return formatted[key]

    config_module.FormatCode = memo_format_code


_memoise_config_formatting()

from tests.utils import find_free_port, make_image_folder, make_tiny_rm_setup  # noqa: E402


@pytest.fixture(scope='session')
def tiny_image_folder(tmp_path_factory):
    """Root of a 2-class folder dataset, 4 RGB 16x16 PNGs per class (read-only: do not
    modify it; write your own with :func:`tests.utils.make_image_folder` if you need other
    shapes)."""
    return make_image_folder(
        tmp_path_factory.mktemp('tiny_imagenet'), num_classes=2,
        images_per_class=4, size=16)


@pytest.fixture
def free_port():
    """A free TCP port on 127.0.0.1."""
    return find_free_port()


@pytest.fixture(autouse=True)
def mmpretrain_default_scope():
    """Every test starts in the mmpretrain scope and leaves none behind: a Runner built in-process
    (e.g. an mmseg one) makes its scope the process-wide default, which would send a later
    ``mmpretrain.registry.MODELS.build`` to the mmseg registry."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='session')
def tiny_rm(tmp_path_factory):
    """``dict(root, data, cfg, rm_path)`` of :func:`tests.utils.make_tiny_rm_setup` (read-only)."""
    return make_tiny_rm_setup(tmp_path_factory.mktemp('tiny_rm'))
