# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + Mixup, alpha 1, top-1 err 3.09.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='Mixup', alpha=1.0)))
