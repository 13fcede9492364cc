# ATSS with a RecursiveMix-pretrained PVTv2-B1 (paper Table 7).
# mmdet's own atss_r50_fpn_1x_coco config,
# with mmdet's PyramidVisionTransformerV2 (B1) as the backbone.
# Paper setting: COCO, 1x schedule (12 epochs); the optimizer is the one mmdet uses for
# PVT/PVTv2 (configs/pvt: AdamW, lr 1e-4, weight decay 1e-4), the rest mmdet's standard
# atss_r50_fpn_1x_coco hyper-parameters (8 GPUs x 2 images, steps at epochs 8 and 11).
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# A BACKBONE-ONLY checkpoint with bare keys (``layers.*``), written from the RM (or baseline /
# CutMix) ImageNet checkpoint by
#   python tools/model_converters/rm2backbone.py \
#       work_dirs/pvt-v2-b1_8xb128_in1k_rm \
#       work_dirs/pvt-v2-b1_8xb128_in1k_rm/backbone.pth --strip-prefix
# Why not the full checkpoint with prefix='backbone.' as for ResNet-50: mmdet's
# PyramidVisionTransformer.init_weights loads ``init_cfg.checkpoint`` itself and ignores
# ``prefix``; ``backbone.*`` keys would all be unexpected and the backbone would stay random.
# The stripped keys are already mmdet's names and pass its ``pvt_convert`` unchanged.
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/pvt-v2-b1_8xb128_in1k_rm/backbone.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='PyramidVisionTransformerV2',  # PVTv2-B1
        embed_dims=64,
        num_layers=[2, 2, 2, 2],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
