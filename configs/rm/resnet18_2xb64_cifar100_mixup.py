# RM paper Table 3 (CIFAR-100, 200 epochs, 2 GPUs x 64): ResNet-18 + Mixup, alpha 1 (top-1 err
# 20.99).
_base_ = './resnet18_2xb64_cifar100.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='Mixup', alpha=1.0)))
