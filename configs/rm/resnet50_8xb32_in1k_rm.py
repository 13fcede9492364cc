# RM paper Tables 5/6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + RecursiveMix, alpha 0.5, omega 0.5, top-1 err 20.80 / top-5 5.42. The downstream
# detection / segmentation configs load work_dirs/resnet50_8xb32_in1k_rm/epoch_300.pth.
# Also the "unshared" / "nearest" cells of Table 4 (ImageNet).
_base_ = './resnet50_8xb32_in1k.py'

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
