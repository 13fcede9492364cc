# UperNet with a RecursiveMix-pretrained ResNet-50 (paper Table 9), as the authors ran it: their
# public logs (implus/RecursiveMix-pytorch, logs/log_ade20k_80k_upernet_r50_{baseline,cutmix,rm}_*.json,
# mmseg 0.20.2) show mmseg's UperNet R-50 on ADE20K 512x512 with a plain-stem ResNet-50
# (norm_eval=False, strides 1/2/2/2, no dilation), AdamW lr 1e-4, weight decay 1e-4, poly decay
# (power 0.9) to 0, 80k iterations, 8 GPUs x 2 images, initialised from the best-epoch
# classification checkpoint (`fold1_best.pth`). mmseg's own config otherwise.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# The backbone of the RM (or baseline / CutMix) ImageNet run's BEST checkpoint (as the authors),
# written by ``python tools/model_converters/rm2backbone.py work_dirs/resnet50_8xb32_in1k_rm
# work_dirs/resnet50_8xb32_in1k_rm/backbone.pth`` (a work dir picks its ``best_*.pth``; keys keep
# their ``backbone.`` prefix; a full training checkpoint loads the same way).
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/resnet50_8xb32_in1k_rm/backbone.pth'

model = dict(
    pretrained=None,  # mmseg's default is open-mmlab://resnet50_v1c
    backbone=dict(
        # plain ResNet-50 stem as in the authors' log (keys == mmpretrain's ResNet); mmseg's
        # default ResNetV1c has a deep stem (stem.*) a classification ResNet-50 does not have.
        type='ResNet',
        depth=50,
        deep_stem=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))

train_dataloader = dict(batch_size=2)  # x 8 GPUs
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)
]
