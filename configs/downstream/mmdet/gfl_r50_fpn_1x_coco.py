# GFL with a RecursiveMix-pretrained ResNet-50 (paper Table 7).
# mmdet's own gfl_r50_fpn_1x_coco config; only the backbone initialisation changes.
# Paper setting: COCO, 1x schedule (12 epochs); mmdet's standard hyper-parameters otherwise
# (8 GPUs x 2 images, SGD lr 0.01, steps at epochs 8 and 11).
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# The RM (or baseline / CutMix) ImageNet classification checkpoint: the full training checkpoint
# (``backbone.*`` is picked by ``prefix``) or the output of
# ``tools/model_converters/rm2backbone.py`` (keeps the ``backbone.`` prefix by default).
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/resnet50_8xb32_in1k_rm/epoch_300.pth'

model = dict(
    backbone=dict(
        type='ResNet',  # plain ResNet-50 (keys == mmpretrain's ResNet): no key conversion
        depth=50,
        frozen_stages=1,
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
