# RecursiveMix on MMPretrain's EfficientNet-B0 recipe (ImageNet, 100 epochs, SGD, 8 GPUs x 32,
# no mixing in the original): RM with the paper's ImageNet settings (alpha 0.5, omega 0.5) and
# soft-label CE for the mixed labels.
_base_ = 'mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(
    type='RMClassifier',
    head=dict(loss=dict(use_soft=True)),
    roi_head=dict(type='RoIConsistencyHead', omega=0.5),
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
