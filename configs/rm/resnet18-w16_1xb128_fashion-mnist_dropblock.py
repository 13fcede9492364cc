# Offline comparison (tools/analysis_tools/compare_fashion_mnist.py): + DropBlock, drop 0.1
# (keep_prob 0.9, the DropBlock / CutMix value) in the last two stages as the DropBlock paper,
# block 3 for this network's 7x7 and 4x4 maps there (ImageNet's 7 covers a 14x14 / 7x7 map).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    backbone=dict(
        type='DropBlockBackbone',
        backbone_type='ResNet_CIFAR',
        dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=3),
        stages=('layer3', 'layer4')))
