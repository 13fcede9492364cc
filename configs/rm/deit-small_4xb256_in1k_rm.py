# RecursiveMix on MMPretrain's DeiT-S recipe (ImageNet, 300 epochs, AdamW, label smoothing 0.1,
# 4 GPUs x 256): the model zoo config with RM in place of its Mixup/CutMix switch. alpha 0.5 and
# omega 0.5 are the paper's ImageNet settings; the consistency head pools the patch tokens
# (class token excluded) of the last layer after the final norm.
_base_ = 'mmpretrain::deit/deit-small_4xb256_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(
    type='RMClassifier',
    roi_head=dict(type='RoIConsistencyHead', omega=0.5),
    train_cfg=dict(_delete_=True, augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
