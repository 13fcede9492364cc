# RecursiveMix on MMPretrain's MobileNetV3-L recipe (ImageNet, 600 epochs, RMSprop, 8 GPUs x 128,
# no mixing in the original): RM with the paper's ImageNet settings (alpha 0.5, omega 0.5) and
# soft-label CE. H' is unshared: the head's final linear takes 1280 hidden channels, the pooled
# map has 960, so share_fc=True is refused for this model.
_base_ = 'mmpretrain::mobilenet_v3/mobilenet-v3-large_8xb128_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(
    type='RMClassifier',
    head=dict(loss=dict(use_soft=True)),
    roi_head=dict(type='RoIConsistencyHead', omega=0.5),
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
