# RM paper Table 3 (CIFAR-100, 200 epochs, 2 GPUs x 64): DenseNet-161 + CutMix, alpha 1, every
# batch (top-1 err 16.64).
_base_ = './densenet161_2xb64_cifar100.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))
