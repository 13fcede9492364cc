# RM paper Table 4b (CIFAR-10, PyramidNet-200 alpha 240): RM with BILINEAR ResizeFill
# (align_corners=True, as
# the reference code) instead of nearest, top-1 err 2.58.
_base_ = './pyramidnet200-a240_2xb32_cifar10_rm.py'

model = dict(train_cfg=dict(augments=dict(interpolation='bilinear')))
