# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + Cutout, top-1 err 22.93: one 112x112 square per image, centre uniform over the image and
# clipped at the border (CutMix's ImageNet setting, Yun et al. Sec. 4.1.1; ClippedCutout is
# DeVries & Taylor's code, mmpretrain's Cutout would shift the square inward near the top / left
# border), after all other transforms, filled with the dataset mean (Cutout zeroes the
# normalised image): pad_val is the mean in the loaded BGR order.
_base_ = './resnet50_8xb32_in1k.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='Lighting', eigval={{_base_.EIGVAL}}, eigvec={{_base_.EIGVEC}}, alphastd=0.1,
         to_rgb=False),
    dict(type='ClippedCutout', shape=112, pad_val=(104, 116, 124), prob=1.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
