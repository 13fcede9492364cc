# CutMix twin of mobilenet-v3-large_8xb128_in1k_rm.py: MMPretrain's MobileNetV3-L recipe with
# CutMix (alpha 1.0, every batch) and soft-label CE.
_base_ = 'mmpretrain::mobilenet_v3/mobilenet-v3-large_8xb128_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(
    head=dict(loss=dict(use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
