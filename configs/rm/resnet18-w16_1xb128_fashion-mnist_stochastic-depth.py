# Offline comparison: + stochastic depth, rate 0.25 (CutMix's CIFAR setting, Yun et al. Sec.
# 4.1.2), decaying linearly over the 8 residual blocks (MMPretrain's ResNet: block l of L drops
# its residual branch with probability 0.25 * l / (L - 1)).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(backbone=dict(drop_path_rate=0.25))
