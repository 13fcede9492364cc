# Baseline of the offline comparison: no mixing.
_base_ = [
    '../_base_/models/resnet18-w16_fashion-mnist.py',
    '../_base_/datasets/fashion_mnist_bs128.py',
    '../_base_/schedules/fashion_mnist_short.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
