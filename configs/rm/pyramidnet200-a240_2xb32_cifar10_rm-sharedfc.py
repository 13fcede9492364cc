# RM paper Table 4a (CIFAR-10, PyramidNet-200 alpha 240): RM with H' SHARED with the main
# classifier's fc
# (no second linear layer), top-1 err 2.61.
_base_ = './pyramidnet200-a240_2xb32_cifar10_rm.py'

model = dict(roi_head=dict(share_fc=True))
