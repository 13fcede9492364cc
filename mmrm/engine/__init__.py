"""What adapts MMEngine 0.10 to this stack: CPU distributed runs, CPU mixed precision,
weights-only checkpoint loading under torch >= 2.6, and config-time checks of the MMPretrain
recipes around an RM model.

Importing this package (``import mmrm`` does) allowlists the globals MMEngine checkpoints need
(:mod:`mmrm.engine.checkpoint`), makes MMEngine's local checkpoint loader name the file and the
problem of an unusable one (:mod:`mmrm.engine.checkpoint_files`) and registers
``CPUAmpOptimWrapper`` (:mod:`mmrm.engine.amp`).
"""
from .amp import CPUAmpOptimWrapper, setup_amp
from .checkpoint import register_safe_globals, safe_globals_list
from .checkpoint_files import (CheckpointError, check_resume_checkpoint, load_checkpoint_file,
                               register_checkpoint_loader)
from .distributed import cuda_available, setup_cpu_distributed, teardown_distributed
from .recipes import check_rm_recipe, is_rm_model

register_safe_globals()
register_checkpoint_loader()

__all__ = [
    'register_safe_globals', 'safe_globals_list', 'setup_cpu_distributed', 'teardown_distributed',
    'cuda_available', 'setup_amp', 'CPUAmpOptimWrapper', 'check_rm_recipe', 'is_rm_model',
    'CheckpointError', 'load_checkpoint_file', 'check_resume_checkpoint',
    'register_checkpoint_loader'
]
