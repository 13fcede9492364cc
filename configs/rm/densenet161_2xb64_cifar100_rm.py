# RM paper Table 3 (CIFAR-100, 200 epochs, 2 GPUs x 64): DenseNet-161 + RecursiveMix, alpha 0.5,
# omega 0.1 (top-1 err 15.54).
_base_ = './densenet161_2xb64_cifar100.py'

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
