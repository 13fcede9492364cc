# RM paper Table 3 (CIFAR-100, 200 epochs, 2 GPUs x 64): PyramidNet-164 (alpha 270) + Mixup,
# alpha 1 (top-1 err 16.02).
_base_ = './pyramidnet164-a270_2xb64_cifar100.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='Mixup', alpha=1.0)))
