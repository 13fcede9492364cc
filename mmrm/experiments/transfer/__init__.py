"""The downstream chain (paper Tables 7-9, offline), split by stage:

- :mod:`.models`: the downstream models as data and what they are scored by;
- :mod:`.plan`: which runs the chain makes (methods, seeds, pairing, scratch options);
- :mod:`.pretrain`: pretrain or take a checkpoint, convert it, check its keys;
- :mod:`.finetune`: fine-tune a model and score it on the test and val canvases;
- :mod:`.score`: the scoring of one checkpoint on several splits with one Runner;
- :mod:`.records`: the published records and the table regenerated from them;
- :mod:`.report`: the statistics and the Markdown table;
- :mod:`.chain`: :class:`TransferChain`, which runs the stages.
"""
from .chain import TransferChain
from .finetune import canvas_data_options, model_scores, no_detection_metrics
from .models import (COMPARISONS, DOWNSTREAM_MODELS, LONG_METHODS, OBJECT_CLASSES, OBJECT_MIOU,
                     PAPER_METHODS, SPLITS, DownstreamModel, check_split, derived_metrics,
                     object_miou)
from .plan import (PAIRINGS, PRETRAIN_OPTIONS, SCRATCH_METHODS, SCRATCH_OPTIONS, TransferPlan,
                   check_choices, long_schedule_options, parse_options, pretrain_configs,
                   seg_scratch_options)
from .records import load_records, records_table, report_records, run_result
from .report import markdown_table, on_split, paired_difference, summarize

__all__ = [
    'TransferChain', 'TransferPlan', 'DownstreamModel', 'DOWNSTREAM_MODELS', 'PAPER_METHODS',
    'LONG_METHODS', 'SPLITS', 'COMPARISONS', 'OBJECT_MIOU', 'OBJECT_CLASSES', 'PAIRINGS',
    'PRETRAIN_OPTIONS', 'SCRATCH_METHODS', 'SCRATCH_OPTIONS', 'check_split', 'derived_metrics',
    'object_miou', 'check_choices', 'pretrain_configs', 'parse_options', 'long_schedule_options',
    'seg_scratch_options', 'model_scores', 'no_detection_metrics', 'canvas_data_options',
    'load_records', 'records_table', 'report_records', 'run_result', 'summarize',
    'paired_difference', 'on_split', 'markdown_table'
]
