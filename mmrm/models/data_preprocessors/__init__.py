from .rm_data_preprocessor import RMDataPreprocessor

__all__ = ['RMDataPreprocessor']
