# Offline comparison, RM ablation "shared H'" (the paper's Table 4a): the RoI branch reuses the
# main classifier's fc instead of its own linear layer.
_base_ = './resnet18-w16_1xb128_fashion-mnist_rm.py'
model = dict(roi_head=dict(share_fc=True))
