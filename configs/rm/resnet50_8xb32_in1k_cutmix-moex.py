# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + CutMix + MoEx, top-1 err 20.90: CutMix (alpha 1) on every batch, then with probability 0.25
# MoEx at the stem with lam 0.9, both pairing the same samples; the labels compose as in the
# authors' main_moex_cutmix.py (ImageNet/run_moex+cutmix_resnet.sh: lam 0.9, prob 0.25).
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=[
        dict(type='FeatureCutMix', alpha=1.0, layers=('input', )),
        dict(type='MoEx', lam=0.9, prob=0.25, layers=('backbone.maxpool', )),
    ])
