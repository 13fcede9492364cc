# Offline comparison: + Cutout (DeVries & Taylor): one square a picture, always applied, centre
# uniform over the image and clipped at its border. Their CIFAR-10 side, 16 of 32 px, scaled to
# 28 px: 14. The fill is the dataset's mean grey (their mask zeroes the normalised image).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ClippedCutout', shape=14, pad_val=73, prob=1.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
