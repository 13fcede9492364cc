"""Data transforms the paper's comparators need and MMPretrain does not have."""
from .transforms import ClippedCutout

__all__ = ['ClippedCutout']
