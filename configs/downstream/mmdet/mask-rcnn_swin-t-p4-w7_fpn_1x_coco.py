# Mask R-CNN with a RecursiveMix-pretrained Swin-T: mmdet's own
# swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco config (COCO, 1x = 12 epochs, AdamW lr 1e-4, weight
# decay 0.05, 8 GPUs x 2 images) with the backbone weights from configs/rm/swin-tiny_16xb64_in1k_rm.py.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# A BACKBONE-ONLY checkpoint (``backbone.*`` keys), written from the RM (or CutMix) ImageNet
# checkpoint by
#   python tools/model_converters/rm2backbone.py \
#       work_dirs/swin-tiny_16xb64_in1k_rm \
#       work_dirs/swin-tiny_16xb64_in1k_rm/backbone.pth --swin-stage-norms
# mmdet's SwinTransformer.init_weights reads ``init_cfg.checkpoint`` itself and keeps only the
# ``backbone.*`` keys (mmpretrain's Swin keys are mmdet's: no ``convert_weights``);
# ``--swin-stage-norms`` adds the stage-output norms norm0-norm2 that the classifier lacks
# (LayerNorm's initial values), so every key of the backbone is accounted for.
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/swin-tiny_16xb64_in1k_rm/backbone.pth'

model = dict(
    backbone=dict(
        convert_weights=False,  # mmpretrain names already; the official-repo converter is off
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
