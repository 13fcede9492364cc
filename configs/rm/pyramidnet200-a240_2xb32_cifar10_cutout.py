# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + Cutout, top-1 err 3.10. One 16x16 square per image, always applied, centre uniform over
# the image and clipped at its border (ClippedCutout: DeVries & Taylor's code; mmpretrain's
# Cutout shifts the square inward near the top / left border instead), their CIFAR-10 setting.
# Their mask zeroes the NORMALISED image, i.e. fills the dataset mean colour: pad_val is the
# CIFAR-10 mean (RGB).
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ClippedCutout', shape=16, pad_val=(125, 123, 114), prob=1.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
