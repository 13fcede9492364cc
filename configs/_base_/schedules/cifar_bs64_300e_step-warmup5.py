# The RM paper's 300-epoch CIFAR-10 schedule (Tables 1 and 4, PyramidNet-200): "we align all
# the hyperparameters with the official CutMix", as run by the reference code's README: total
# batch 64 (2 GPUs x 32; the reference divides --batch_size 64 by the GPU count), SGD with
# Nesterov momentum 0.9, weight decay 1e-4, lr 0.25, x0.1 at epochs 150 and 225, plus the
# reference code's 5-epoch linear warm-up.
max_epochs = 300
warmup_epochs = 5

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.25, momentum=0.9, weight_decay=1e-4, nesterov=True))

param_scheduler = [
    # lr * e / (warmup + 1) per epoch in the reference (starts at lr / 6), here per iteration
    dict(type='LinearLR', start_factor=1.0 / 6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, milestones=[150, 225], gamma=0.1),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.25 is for 64 images per step (see configs/rm/README.md)
auto_scale_lr = dict(base_batch_size=64)
