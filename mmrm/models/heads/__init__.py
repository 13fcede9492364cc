from .roi_consistency_head import RoIConsistencyHead

__all__ = ['RoIConsistencyHead']
