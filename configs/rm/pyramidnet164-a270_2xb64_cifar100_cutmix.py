# RM paper Table 3 (CIFAR-100, 200 epochs, 2 GPUs x 64): PyramidNet-164 (alpha 270) + CutMix,
# alpha 1, every batch (top-1 err 15.59).
# Also the "CutMix" row of Table 2 (ablation of RM components).
_base_ = './pyramidnet164-a270_2xb64_cifar100.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))
