# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + MoEx, top-1 err 21.90: PONO moments exchanged at the stem (after the max pool) on every
# batch, labels weighted lam = 0.9 (MoEx authors' ImageNet/run_moex_resnet.sh: lam 0.9, prob 1).
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(type='MoEx', lam=0.9, prob=1.0, layers=('backbone.maxpool', )))
