"""Analyses of RecursiveMix training, one module per question (paper Table 10, Figs. 4-5, 8):

- :mod:`.variants`: the baseline / Mixup / CutMix / RM models of one network;
- :mod:`.cost`: parameters, FLOPs, memory (:mod:`.memory`), step time (:mod:`.timing`) and
  per-operator profile (:mod:`.profiling`) of those variants;
- :mod:`.cuda_sync`: host-device synchronisations per training step on CUDA;
- :mod:`.effective_classes`: how many classes a mixed target spreads over;
- :mod:`.sweep` and :mod:`.work_dirs`: alpha / omega sweeps from finished work dirs;
- :mod:`.runs`: the launcher / run cache of the experiment tools (a run is its key; submitit
  local processes or Slurm jobs);
- :mod:`.transfer` and :mod:`.transfer_report`: the downstream chain and its table;
- :mod:`.downstream`: a downstream config really loads its pretrained backbone;
- :mod:`.style_distance`: class style distances for StyleCutMix's auto-gamma.

Not imported by ``import mmrm``: the tools in ``tools/analysis_tools`` import what they use.
"""
