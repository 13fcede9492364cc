# CutMix twin of deit-small_4xb256_in1k_rm.py: MMPretrain's DeiT-S recipe with CutMix
# (alpha 1.0, every batch, as the paper's CutMix rows) in place of its Mixup/CutMix switch.
_base_ = 'mmpretrain::deit/deit-small_4xb256_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(train_cfg=dict(_delete_=True, augments=dict(type='CutMix', alpha=1.0)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
