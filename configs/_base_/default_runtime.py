# MMPretrain's runtime, plus the import that registers mmrm's components.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)
