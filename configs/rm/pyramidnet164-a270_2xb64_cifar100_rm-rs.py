# RM paper Table 2 (ablation, CIFAR-100, PyramidNet-164 alpha 270, 200 epochs): "RS" row,
# top-1 err 15.36. CutMix with RM's resize strategy: the whole partner image is resized into
# the box instead of cut at it; the partner is a shuffled sample of the CURRENT batch (no
# history, use_history=False) and there is no consistency loss, so this is a plain
# ImageClassifier. The box ratio is RM's U[0, alpha=0.5] so that RS -> +HIS -> +CL each
# change exactly one switch.
_base_ = './pyramidnet164-a270_2xb64_cifar100.py'

model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5,
                                 interpolation='nearest', resize=True,
                                 use_history=False)))
