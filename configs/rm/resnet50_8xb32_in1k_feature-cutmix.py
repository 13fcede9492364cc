# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + Feature CutMix, top-1 err 21.80: CutMix (alpha 1) "at a randomly chosen layer per minibatch
# as Manifold Mixup does" (Yun et al. Sec. 4.1.1): input, after layer1 or after layer2.
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(
        type='FeatureCutMix', alpha=1.0, layers=('input', 'backbone.layer1', 'backbone.layer2')))
