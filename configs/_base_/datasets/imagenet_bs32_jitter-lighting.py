# ImageNet-1k as the RM paper's 300-epoch runs (Tables 4-6): RandomResizedCrop 224 + flip +
# colour jitter 0.4 (brightness, contrast, saturation) + AlexNet-style PCA lighting (alphastd
# 0.1), exactly the reference code's `--aug_plus` pipeline (implus/RecursiveMix-pytorch,
# dataset.py) and CutMix's ImageNet pipeline; val: short side 256, centre crop 224.
#
# Layout (mmpretrain's `ImageNet`): data/imagenet/{train,val}/ with meta/{train,val}.txt
# ("relative/path.JPEG label" per line) if present, class sub-folders otherwise.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    # images are loaded BGR
    to_rgb=True)

# PCA lighting on the 0-255 BGR image: the reference eigenvalues (0.2175, 0.0188, 0.0045 on a
# 0-1 RGB image) times 255, eigenvectors with rows and columns in BGR order (as mmpretrain's
# ResNeSt configs).
EIGVAL = [55.4625, 4.7940, 1.1475]
EIGVEC = [
    [-0.5836, -0.6948, 0.4203],
    [-0.5808, -0.0045, -0.8140],
    [-0.5675, 0.7192, 0.4009],
]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='Lighting', eigval=EIGVAL, eigvec=EIGVEC, alphastd=0.1, to_rgb=False),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
