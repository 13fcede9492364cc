# UperNet with a RecursiveMix-pretrained Swin-T: mmseg's own
# swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512 config (AdamW lr 6e-5,
# weight decay 0.01, 1.5k-iteration warm-up then poly decay, 8 GPUs x 2 images), with the
# backbone weights from configs/rm/swin-tiny_16xb64_in1k_rm.py and the paper's ADE20K schedule
# (80k iterations, as every segmentation row of the paper; mmseg's Swin config runs 160k).
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# The backbone-only checkpoint of configs/downstream/mmdet/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py
# (``rm2backbone.py ... --swin-stage-norms``); mmseg's SwinTransformer strips ``backbone.`` itself.
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/swin-tiny_16xb64_in1k_rm/backbone.pth'

model = dict(
    pretrained=None,
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=80000, by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=8000))
