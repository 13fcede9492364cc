# CIFAR DenseNet-161 (BC, growth 48, 3x3 stem; mmrm's DenseNetCIFAR, 26.68M parameters) with a
# 100-way linear head: RM paper Table 3.
model = dict(
    type='ImageClassifier',
    # transition_act=False: BN-conv-pool transitions, exactly as the RM authors' CIFAR DenseNet
    # (implus/RecursiveMix-pytorch models_cifar/densenet.py) that produced Table 3
    backbone=dict(type='DenseNetCIFAR', arch='161', transition_act=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=2208,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
