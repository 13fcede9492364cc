"""Data structures of RecursiveMix passed between components."""
from .rm_mix import RMMix

__all__ = ['RMMix']
