# Offline comparison: + MoEx at the stem output (conv-BN-ReLU), the MoEx authors' small-image
# (CIFAR) values lam 0.5, prob 0.25.
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(type='MoEx', lam=0.5, prob=0.25, layers=('backbone.relu', )))
