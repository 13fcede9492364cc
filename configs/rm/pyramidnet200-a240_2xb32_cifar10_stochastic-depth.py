# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + Stochastic Depth, top-1 err 3.11. Huang et al.'s linear-decay rule with p_L = 0.5 (their
# CIFAR setting; CutMix, whose numbers Table 1 repeats, used each method's original
# hyper-parameters): block l of L drops its residual branch with probability 0.5 * l / L.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(backbone=dict(drop_path_rate=0.5))
