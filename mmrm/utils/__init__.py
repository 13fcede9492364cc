"""mmrm utilities.

Importing this package (``import mmrm`` does) registers the globals that MMEngine checkpoints
need under torch's weights-only ``torch.load`` (see :mod:`mmrm.utils.checkpoint`) and the
``CPUAmpOptimWrapper`` (see :mod:`mmrm.utils.dist`).
"""
from .checkpoint import register_safe_globals, safe_globals_list
from .dist import CPUAmpOptimWrapper, setup_amp, setup_cpu_distributed, teardown_distributed

register_safe_globals()

__all__ = [
    'register_safe_globals', 'safe_globals_list', 'setup_cpu_distributed', 'teardown_distributed',
    'setup_amp', 'CPUAmpOptimWrapper'
]
