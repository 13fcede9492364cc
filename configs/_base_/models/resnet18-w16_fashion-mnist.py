# A narrow CIFAR-style ResNet-18 (widths 16/32/64/128, 3x3 stem, output stride 8) for 28x28 grey
# images: small enough to train on a laptop CPU in minutes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=16,
                  base_channels=16, num_stages=4, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)
