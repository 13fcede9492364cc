# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + Stochastic Depth, top-1 err 3.11. Drop rate 0.25, CutMix's CIFAR setting ("The drop rate for
# Stochastic Depth is set to 0.25", Yun et al. Sec. 4.1.2), with Huang et al.'s linear-decay rule:
# block l of L drops its residual branch with probability 0.25 * l / L.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(backbone=dict(drop_path_rate=0.25))
