from .recursive_mix import RecursiveMixBatchAugment

__all__ = ['RecursiveMixBatchAugment']
