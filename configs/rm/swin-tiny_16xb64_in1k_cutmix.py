# CutMix twin of swin-tiny_16xb64_in1k_rm.py: MMPretrain's Swin-T recipe with CutMix (alpha 1.0,
# every batch) in place of its Mixup/CutMix switch.
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

model = dict(train_cfg=dict(_delete_=True, augments=dict(type='CutMix', alpha=1.0)))

# keep the best epoch too: the paper reports it, and the authors fine-tune downstream from it
default_hooks = dict(checkpoint=dict(save_best='auto'))
