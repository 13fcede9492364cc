# Offline comparison: + Manifold Mixup, alpha 1.0 (the RM tables' value), layer drawn from
# {input, after layer1, after layer2} (Verma et al.'s rule).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(
        type='ManifoldMixup', alpha=1.0, layers=('input', 'backbone.layer1', 'backbone.layer2')))
