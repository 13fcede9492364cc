# HTC with a RecursiveMix-pretrained ResNet-50 (paper Table 8).
# mmdet's own htc_r50_fpn_1x_coco config; only the backbone initialisation changes.
# Paper setting: COCO, 1x schedule (12 epochs); mmdet's standard hyper-parameters otherwise
# (8 GPUs x 2 images, SGD lr 0.02, steps at epochs 8 and 11).
_base_ = 'mmdet::htc/htc_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# The backbone of the RM (or baseline / CutMix) ImageNet run's BEST checkpoint, as the authors
# fine-tune (their ATSS logs load ``fold1_best.pth``), written by
# ``python tools/model_converters/rm2backbone.py work_dirs/resnet50_8xb32_in1k_rm
# work_dirs/resnet50_8xb32_in1k_rm/backbone.pth`` (a work dir picks its ``best_*.pth``; keys keep
# their ``backbone.`` prefix). A full training checkpoint loads the same way (``prefix``).
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/resnet50_8xb32_in1k_rm/backbone.pth'

model = dict(
    backbone=dict(
        type='ResNet',  # plain ResNet-50 (keys == mmpretrain's ResNet): no key conversion
        depth=50,
        frozen_stages=1,
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
