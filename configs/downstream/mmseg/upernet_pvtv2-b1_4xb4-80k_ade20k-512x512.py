# UperNet with a RecursiveMix-pretrained PVTv2-B1 (paper Table 9).
# mmseg's own upernet_r50_4xb4-80k_ade20k-512x512 config,
# with MMDetection's PyramidVisionTransformerV2 (B1) as the backbone
# (mmseg has no PVTv2; ``mmdet.`` builds it from mmdet's registry across scopes).
# Paper setting: ADE20K, 512x512 crops, 80k iterations. The paper does not give the PVTv2
# optimizer; this uses AdamW (lr 1e-4, weight decay 1e-4, poly decay with power 0.9 to 0) as
# the PVT papers do for ADE20K and as mmdet does for PVT; mmseg's standard settings otherwise
# (4 GPUs x 4 images).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'

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
    pretrained=None,  # mmseg's default is open-mmlab://resnet50_v1c
    backbone=dict(
        _delete_=True,
        type='mmdet.PyramidVisionTransformerV2',  # PVTv2-B1, outputs 64/128/320/512
        embed_dims=64,
        num_layers=[2, 2, 2, 2],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)
]
