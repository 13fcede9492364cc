# PVTv2-B1 (mmdet's PyramidVisionTransformerV2 through mmrm's PyramidVisionTransformerV2Cls, so
# checkpoint keys match the mmdet / mmseg backbone; 14.0M parameters; drop path 0.1, the mmdet
# default and PVTv2-B1's official value) with a 1000-way linear head on the pooled 512-channel
# last stage: RM paper Table 5 and the downstream backbone.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='PyramidVisionTransformerV2Cls', embed_dims=64, num_layers=[2, 2, 2, 2],
        drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
