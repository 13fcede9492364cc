# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + Manifold Mixup, top-1 err 22.50: alpha 1.0 (CutMix tried 0.5 and 1.0, kept 1.0), the layer
# drawn uniformly per batch from {input, after layer1, after layer2} (Verma et al.'s rule).
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(
        type='ManifoldMixup', alpha=1.0, layers=('input', 'backbone.layer1', 'backbone.layer2')))
