"""Pictures of RecursiveMix: the recursive-mixed training batches (paper Figs. 1-3,
:mod:`.mix_grid`), class activation maps (Figs. 6-7, :mod:`.cam`) and the line plots of the
analyses (Figs. 4-5 and 8, :mod:`.plots`). Needs matplotlib; not imported by ``import mmrm``."""
