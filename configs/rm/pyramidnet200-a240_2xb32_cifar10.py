# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# baseline, top-1 err 3.85.
_base_ = [
    '../_base_/models/pyramidnet200-a240_cifar10.py',
    '../_base_/datasets/cifar10_bs32.py',
    '../_base_/schedules/cifar_bs64_300e_step-warmup5.py',
    '../_base_/default_runtime.py',
]

# The paper reports each run's best epoch (mean of 3 runs): keep the best checkpoint and
# the last one (epoch_300.pth).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'))
