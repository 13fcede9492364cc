# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + Stochastic Depth, top-1 err 22.46: residual branches dropped with a rate rising linearly to
# 0.25 at the last block (CutMix's ImageNet setting, Yun et al. Sec. 4.1.1; mmpretrain's
# drop_path_rate: linspace(0, 0.25) over the 16 blocks, per sample).
_base_ = './resnet50_8xb32_in1k.py'

model = dict(backbone=dict(drop_path_rate=0.25))
