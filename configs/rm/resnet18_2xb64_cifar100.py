# RM paper Table 3 (CIFAR-100, 200 epochs, 2 GPUs x 64): ResNet-18, baseline (top-1 err 21.70).
_base_ = [
    '../_base_/models/resnet18_cifar100.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar_bs128_200e_coslr-warmup5.py',
    '../_base_/default_runtime.py',
]

# The paper reports each run's best epoch (mean of 3 runs): keep the best checkpoint and
# the last one (epoch_200.pth).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'))
