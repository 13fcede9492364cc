# Offline comparison: + Feature CutMix, alpha 1.0, layer drawn as Manifold Mixup (Yun et al.).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(
        type='FeatureCutMix', alpha=1.0, layers=('input', 'backbone.layer1', 'backbone.layer2')))
