# CIFAR-10 (python pickles under data/cifar10/cifar-10-batches-py), the RM paper's Table 1 / 4
# setting: 32x32 random crop with 4-pixel zero padding + horizontal flip, as the reference code
# (implus/RecursiveMix-pytorch) and CutMix. 32 images per GPU: the paper's 300-epoch CIFAR-10 runs
# use a total batch of 64 on 2 GPUs (see configs/rm/README.md, "Batch and learning rate").
dataset_type = 'CIFAR10'
data_root = 'data/cifar10'
data_preprocessor = dict(
    num_classes=10,
    # the reference code's normalisation (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010)
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    # the pickles hold RGB images
    to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=32,
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
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
