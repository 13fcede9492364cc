# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + Manifold Mixup, alpha 1.0, top-1 err 3.15: Mixup of the input or of a hidden state, the layer
# drawn uniformly per batch from {input, after stage 1, after stage 2} (Verma et al.'s rule,
# their code's layer_mix = randint(0, 2)); alpha 1.0 as the paper's row (CutMix's choice).
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    type='FeatureMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    feature_mix=dict(
        type='ManifoldMixup', alpha=1.0, layers=('input', 'backbone.layer1', 'backbone.layer2')))
