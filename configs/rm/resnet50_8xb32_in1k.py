# RM paper Tables 5/6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# baseline, top-1 err 23.68 (quoted by the paper from CutMix).
_base_ = [
    '../_base_/models/resnet50_in1k.py',
    '../_base_/datasets/imagenet_bs32_jitter-lighting.py',
    '../_base_/schedules/imagenet_bs256_300e_coslr-warmup5.py',
    '../_base_/default_runtime.py',
]

# The paper reports each run's best epoch (mean of 3 runs): keep the best checkpoint and
# the last one (epoch_300.pth).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'))
