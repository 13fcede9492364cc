"""Small helpers shared by the package and the tools: config loading (:mod:`.config`), argparse
types (:mod:`.cli`), RM checkpoint conversion (:mod:`.convert`) and what of the OpenMMLab stack
the environment holds (:mod:`.stack`), where a figure was measured (:mod:`.machine`)."""
from .cli import shape_type
from .config import load_config, model_config, prepare_scope, to_plain
from .convert import RM_ONLY_PREFIXES, add_swin_stage_norms, convert_rm_checkpoint
from .machine import cores_available, cpu_model, fit_loaders_to_cores, loader_workers
from .stack import StackMissing, load_config_checked

__all__ = [
    'shape_type', 'load_config', 'model_config', 'prepare_scope', 'to_plain', 'RM_ONLY_PREFIXES',
    'convert_rm_checkpoint', 'add_swin_stage_norms', 'StackMissing', 'load_config_checked',
    'cpu_model', 'cores_available', 'loader_workers', 'fit_loaders_to_cores'
]
