# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + DropBlock, top-1 err 3.27. keep_prob 0.9 (drop 0.1) and block size 4: CutMix's CIFAR setting
# (Yun et al., Sec. 4.1.2), whose numbers Table 1 repeats. Placement and schedule as the DropBlock
# paper / its authors' code: the last two groups (layer2 at 1/4 of the rate, layer3), after every
# conv + BN and on the shortcut, keep_prob decreased linearly from 1 over training.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    backbone=dict(
        type='DropBlockBackbone',
        backbone_type='PyramidNet',
        dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=4, schedule='linear'),
        stages=('layer2', 'layer3')))
