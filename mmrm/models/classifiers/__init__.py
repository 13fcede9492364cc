from .feature_mix_classifier import FeatureMixClassifier
from .puzzle_mix_classifier import PuzzleMixClassifier
from .rm_classifier import RMClassifier

__all__ = ['RMClassifier', 'FeatureMixClassifier', 'PuzzleMixClassifier']
