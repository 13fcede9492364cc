# CIFAR ResNet-34 (3x3 stem, no max pool; mmpretrain's ResNet_CIFAR, the kuangliu/pytorch-cifar
# network of the RM reference code) with a 100-way linear head: RM paper Tables 3 (and 4 for R-18).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=34, num_stages=4, out_indices=(3, ),
                  style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
