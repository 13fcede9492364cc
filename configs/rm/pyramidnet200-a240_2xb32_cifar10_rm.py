# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + RecursiveMix, alpha 0.5, omega 0.1, top-1 err 2.35 (the reference code's README command).
# Also the "unshared" / "nearest" cells of Table 4 (CIFAR-10) and the centre of the alpha /
# omega sweeps of Fig. 4 / 5 (see README.md).
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    type='RMClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    # H' unshared (share_fc=False), the paper's default (Table 4a)
    roi_head=dict(type='RoIConsistencyHead', omega=0.1, share_fc=False),
    # alpha 0.5, nearest ResizeFill (Table 4b), history reset per epoch as the
    # reference code
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5,
                                 interpolation='nearest')),
)
