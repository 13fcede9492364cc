# PyramidNet-164, widening factor alpha 270, bottleneck blocks (27.3M parameters; mmrm's
# PyramidNet, the CutMix / RM reference implementation) with a 100-way linear head: RM paper
# Tables 2 and 3.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='PyramidNet', depth=164, alpha=270, bottleneck=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=1144,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
