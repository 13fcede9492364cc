# RecursiveMix on Fashion-MNIST: the `make demo` job (alpha 0.5, omega 0.1 as the paper's CIFAR
# runs, nearest ResizeFill, unshared H').
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    type='RMClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    roi_head=dict(type='RoIConsistencyHead', num_classes=10, in_channels=128, omega=0.1),
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5,
                                 interpolation='nearest')),
)
