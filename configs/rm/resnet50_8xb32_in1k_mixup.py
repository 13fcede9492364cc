# RM paper Tables 5/6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + Mixup, alpha 1, top-1 err 22.58.
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='Mixup', alpha=1.0)))
