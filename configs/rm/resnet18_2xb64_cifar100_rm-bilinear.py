# RM paper Table 4b (CIFAR-100, ResNet-18): RM with BILINEAR ResizeFill (align_corners=True, as
# the reference code) instead of nearest, top-1 err 18.78.
_base_ = './resnet18_2xb64_cifar100_rm.py'

model = dict(train_cfg=dict(augments=dict(interpolation='bilinear')))
