# RM paper Table 5 (ImageNet, PVTv2-B1, 300 epochs, 8 GPUs x 128): PVTv2's official AdamW
# schedule (the paper gives none) with the paper's data pipeline, see README.md:
# + CutMix, alpha 1, every batch, top-1 err 22.92.
_base_ = './pvt-v2-b1_8xb128_in1k.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))
