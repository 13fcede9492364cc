# Offline comparison: + CutMix (alpha 1) + MoEx at the stem output (lam 0.9, prob 0.25: the
# MoEx authors' CutMix + MoEx values), one shared partner per sample.
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=[
        dict(type='FeatureCutMix', alpha=1.0, layers=('input', )),
        dict(type='MoEx', lam=0.9, prob=0.25, layers=('backbone.relu', )),
    ])
