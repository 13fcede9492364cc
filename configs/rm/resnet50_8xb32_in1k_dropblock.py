# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + DropBlock, top-1 err 21.87 (the DropBlock paper's own figure, 270 epochs): keep_prob 0.9,
# block 7, groups 3 and 4 (layer3 at 1/4 of the rate), after every conv + BN and on the shortcut,
# keep_prob decreased linearly from 1 over training (Ghiasi et al. Sec. 4.1 and their code).
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    backbone=dict(
        type='DropBlockBackbone',
        backbone_type='ResNet',
        dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=7, schedule='linear'),
        stages=('layer3', 'layer4')))
