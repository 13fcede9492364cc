"""mmrm: RecursiveMix for the OpenMMLab 2.0 stack.

Importing the package registers every mmrm component into the MMPretrain registries (and the
MMDetection / MMSegmentation ones where a component serves them), so any OpenMMLab config reaches
them with ``custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)``.
"""
import warnings as _warnings

from .version import __version__
from .utils.stack import has_mmcv_ops as _has_mmcv_ops
from .utils.stack import install_hint_hook as _install_hint_hook

if not _has_mmcv_ops():
    # mmcv without its compiled ops (the classification-only .venv of `make demo`): mmcv warns
    # at import to "install mmcv rather than mmcv-lite" for a detection op classification never
    # uses; what detection / segmentation need is said where they are asked for (utils/stack.py)
    _warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
from . import engine  # noqa: F401  (safe checkpoint loading under torch>=2.6, CPU AMP)
from . import datasets  # noqa: F401  (registers the data transforms)
from . import models  # noqa: F401  (registers the components)

# Without mmcv's compiled ops (the classification-only .venv of `make demo`), an uncaught
# ImportError of mmcv._ext / mmdet / mmseg (e.g. another repository's tools building a detection
# model) ends with what is missing and `make install`, the command that completes the venv.
_install_hint_hook()

__all__ = ['__version__']
