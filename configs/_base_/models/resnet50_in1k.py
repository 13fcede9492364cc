# ResNet-50 (plain mmpretrain `ResNet`, whose keys mmdet / mmseg load as they are; 25.56M
# parameters) with a 1000-way linear head: RM paper Tables 4-6 and the downstream backbone.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
