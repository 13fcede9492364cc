# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + MoEx, top-1 err 3.44: PONO moments exchanged after the first conv + BN of PyramidNet with
# probability 0.25, labels weighted lam = 0.5 (MoEx authors' CIFAR PyramidNet-200 command,
# CIFAR/run.sh: --lam 0.5 --pono_prob 0.25).
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(type='MoEx', lam=0.5, prob=0.25, layers=('backbone.bn1', )))
