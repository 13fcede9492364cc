"""pytest configuration shared by all mmrm tests.

* puts the repository root first on ``sys.path`` so ``import mmrm`` and
  ``from tests.utils import ...`` work from a checkout without installing;
* fixtures: ``tiny_image_folder`` (a session-wide synthetic ImageNet-style folder, see
  :func:`tests.utils.make_image_folder`), ``tiny_rm`` (a tiny RM config and data, see
  :func:`tests.utils.make_tiny_rm_setup`), ``one_thread`` and ``free_port``.

Tests mirror the package: ``tests/test_models`` for ``mmrm/models``, ``tests/test_engine``,
``tests/test_analysis``, ``tests/test_experiments``, ``tests/test_visualization``,
``tests/test_utils``, and ``tests/test_tools`` / ``tests/test_configs`` for the command-line
tools and the configs.
"""
import importlib.machinery
import importlib.util
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


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op torch thread for a module's tests (``pytestmark =
    pytest.mark.usefixtures('one_thread')``): the machine is shared, and small runs are faster
    and steadier on one thread."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
