# RM paper Table 4a (ImageNet, ResNet-50): RM with H' SHARED with the main classifier's fc
# (no second linear layer), top-1 err 20.92.
_base_ = './resnet50_8xb32_in1k_rm.py'

model = dict(roi_head=dict(share_fc=True))
