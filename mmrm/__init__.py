"""mmrm: RecursiveMix for the OpenMMLab 2.0 stack.

Importing the package registers every mmrm component into the MMPretrain registries (and the
MMDetection / MMSegmentation ones where a component serves them), so any OpenMMLab config reaches
them with ``custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)``.
"""
from .version import __version__
from . import engine  # noqa: F401  (safe checkpoint loading under torch>=2.6, CPU AMP)
from . import datasets  # noqa: F401  (registers the data transforms)
from . import models  # noqa: F401  (registers the components)

__all__ = ['__version__']
