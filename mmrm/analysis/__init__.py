"""Measurements of RecursiveMix training, one module per question (paper Table 10, Fig. 8):

- :mod:`.variants`: the baseline / Mixup / CutMix / RM models of one network;
- :mod:`.cost`: parameters, FLOPs, memory (:mod:`.memory`), step time (:mod:`.timing`) and
  per-operator profile (:mod:`.profiling`) of those variants; :mod:`.compile_stats`: graphs
  and breaks under ``torch.compile``;
- :mod:`.cuda_sync`: host-device synchronisations per training step on CUDA;
- :mod:`.effective_classes`: how many classes a mixed target spreads over;
- :mod:`.downstream`: a downstream config really loads its pretrained backbone;
- :mod:`.style_distance`: class style distances for StyleCutMix's auto-gamma.

Running experiments (the run cache, the launcher, the tables) is :mod:`mmrm.experiments`.
Not imported by ``import mmrm``: the tools in ``tools/analysis_tools`` import what they use.
"""
