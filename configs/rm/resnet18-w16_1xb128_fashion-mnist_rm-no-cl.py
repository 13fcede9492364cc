# Offline comparison, RM ablation "no CL" (the paper's RS + HIS row of Table 2): the historical
# resize-fill without the consistency loss, a plain ImageClassifier with the RM batch augment.
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5,
                                 interpolation='nearest', use_history=True)))
