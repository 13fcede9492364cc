# RM paper Table 5 (ImageNet, PVTv2-B1, 300 epochs, 8 GPUs x 128): PVTv2's official AdamW
# schedule (the paper gives none) with the paper's data pipeline, see README.md:
# + Mixup, alpha 1, top-1 err 23.23.
_base_ = './pvt-v2-b1_8xb128_in1k.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='Mixup', alpha=1.0)))
