# RM paper Tables 5/6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + CutMix, alpha 1, every batch (CutMix's ImageNet setting), top-1 err 21.40.
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))
