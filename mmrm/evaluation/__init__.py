"""Evaluation pieces for the downstream configs. Not imported by ``import mmrm`` (they import
MMSegmentation): a config that uses one names its module in ``custom_imports``, e.g.
``custom_imports = dict(imports=['mmrm', 'mmrm.evaluation.seg_metric'])``."""
