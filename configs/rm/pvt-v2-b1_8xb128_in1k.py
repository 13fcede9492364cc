# RM paper Table 5 (ImageNet, PVTv2-B1, 300 epochs, 8 GPUs x 128): PVTv2's official AdamW
# schedule (the paper gives none) with the paper's data pipeline, see README.md:
# baseline, top-1 err 24.92.
_base_ = [
    '../_base_/models/pvt-v2-b1_in1k.py',
    '../_base_/datasets/imagenet_bs32_jitter-lighting.py',
    '../_base_/schedules/imagenet_adamw-bs1024_300e_coslr-warmup5.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=128)

# The paper reports each run's best epoch (mean of 3 runs): keep the best checkpoint and
# the last one (epoch_300.pth).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'))
