# RecursiveMix on MMPretrain's ConvNeXt-T recipe (ImageNet, 300 epochs, AdamW lr 4e-3, label
# smoothing 0.1, EMA, 32 GPUs x 128): the model zoo config with RM in place of its Mixup/CutMix
# switch; alpha 0.5 and omega 0.5 are the paper's ImageNet settings. ConvNeXt averages its last
# stage before the final norm: the consistency head pools that stage's map and applies the same
# norm to the pooled box.
_base_ = 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(
    type='RMClassifier',
    roi_head=dict(type='RoIConsistencyHead', omega=0.5),
    train_cfg=dict(_delete_=True, augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
