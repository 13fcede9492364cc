# CutMix twin of efficientnet-b0_8xb32_in1k_rm.py: MMPretrain's EfficientNet-B0 recipe with
# CutMix (alpha 1.0, every batch) and soft-label CE.
_base_ = 'mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(
    head=dict(loss=dict(use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
