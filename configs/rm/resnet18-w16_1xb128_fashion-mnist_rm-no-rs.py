# Offline comparison, RM ablation "no RS": RM with the history cut at the box (CutMix's way)
# instead of resized into it; history and consistency loss kept.
_base_ = './resnet18-w16_1xb128_fashion-mnist_rm.py'
model = dict(train_cfg=dict(augments=dict(resize=False)))
