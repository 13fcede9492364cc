from .feature_cutmix import FeatureCutMix
from .manifold_mixup import ManifoldMixup
from .moex import MoEx
from .puzzle_mix import PuzzleMix
from .recursive_mix import RecursiveMixBatchAugment
from .style_cutmix import StyleCutMix

__all__ = [
    'RecursiveMixBatchAugment', 'ManifoldMixup', 'FeatureCutMix', 'MoEx', 'PuzzleMix',
    'StyleCutMix'
]
