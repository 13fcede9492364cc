# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + CutMix, alpha 1, top-1 err 2.88. Applied to a batch with probability 0.5 as CutMix's
# official CIFAR runs (--cutmix_prob 0.5); the other half trains on the plain batch.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0), probs=0.5))
