from .rm_classifier import RMClassifier

__all__ = ['RMClassifier']
