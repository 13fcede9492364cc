# PyramidNet-200, widening factor alpha 240, bottleneck blocks (26.8M parameters; mmrm's
# PyramidNet, the CutMix / RM reference implementation) with a 10-way linear head: RM paper
# Tables 1 and 4 (CIFAR-10).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='PyramidNet', depth=200, alpha=240, bottleneck=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))
