# RM paper Table 5 (ImageNet, PVTv2-B1, 300 epochs, 8 GPUs x 128): PVTv2's official AdamW
# schedule (the paper gives none) with the paper's data pipeline, see README.md:
# + RecursiveMix, alpha 0.5, omega 0.5, top-1 err 22.22 / top-5 6.17. The downstream
# configs load work_dirs/pvt-v2-b1_8xb128_in1k_rm/epoch_300.pth.
_base_ = './pvt-v2-b1_8xb128_in1k.py'

model = dict(
    type='RMClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    # H' unshared (share_fc=False), the paper's default (Table 4a)
    roi_head=dict(type='RoIConsistencyHead', omega=0.5, share_fc=False),
    # alpha 0.5, nearest ResizeFill (Table 4b), history reset per epoch as the
    # reference code
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5,
                                 interpolation='nearest')),
)
