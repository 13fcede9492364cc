# The RM paper's 200-epoch CIFAR schedule (Tables 2, 3, 4 on CIFAR-100): SGD, momentum 0.9,
# weight decay 5e-4, lr 0.1 for a total batch of 128 (2 GPUs x 64), linear warm-up over the
# first 5 epochs, then cosine decay to 0 at epoch 200.
max_epochs = 200
warmup_epochs = 5

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))

param_scheduler = [
    # The reference code steps lr * e / (warmup + 1) once per epoch (e = 1..5, so it starts at
    # lr / 6); here the same ramp runs per iteration.
    dict(type='LinearLR', start_factor=1.0 / 6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, eta_min=0.0, convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.1 is for 128 images per step; `tools/train.py --auto-scale-lr` rescales it linearly to
# the actual total batch (GPUs x train_dataloader.batch_size).
auto_scale_lr = dict(base_batch_size=128)
