# CIFAR-100 (python pickles under data/cifar100/cifar-100-python), the RM paper's 200-epoch
# setting (Tables 2, 3, 4): 32x32 random crop with 4-pixel zero padding + horizontal flip.
# 64 images per GPU on 2 GPUs ("2 GPUs with a mini-batch size of 64 on each").
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'
data_preprocessor = dict(
    num_classes=100,
    # CIFAR-100's own statistics (mmpretrain's); the reference code reuses CIFAR-10's, which
    # differ by a few grey levels and make no measurable difference.
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    # the pickles hold RGB images
    to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type, data_root=data_root, split='test', test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
