# RM paper Table 4a (CIFAR-100, ResNet-18): RM with H' SHARED with the main classifier's fc
# (no second linear layer), top-1 err 18.66.
_base_ = './resnet18_2xb64_cifar100_rm.py'

model = dict(roi_head=dict(share_fc=True))
