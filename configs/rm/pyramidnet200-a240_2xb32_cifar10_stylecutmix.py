# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + StyleCutMix (auto-gamma), top-1 err 2.55: the StyleMix authors' CIFAR-10 command (--prob 0.5
# --r 0.7 --delta 1.0, box and style ratios ~ Beta(1, 1), 224-pixel AdaIN style transfer).
# Needs the pretrained AdaIN weights and the CIFAR-10 class style distances in
# checkpoints/stylemix/ (see configs/rm/README.md); building without them is an error.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(
        augments=dict(
            type='StyleCutMix',
            encoder_checkpoint='checkpoints/stylemix/vgg_normalised.pth',
            decoder_checkpoint='checkpoints/stylemix/decoder.pth.tar',
            style_distance='checkpoints/stylemix/styleDistanceMatrix10.pt',
            gamma='auto',
            delta=1.0,
            r=0.7,
            alpha=1.0,
            prob=0.5,
            style_size=224)))
