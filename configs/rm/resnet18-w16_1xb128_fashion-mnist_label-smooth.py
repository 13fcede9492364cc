# Offline comparison: + label smoothing 0.1 (Szegedy et al.; the RM paper's Table 1 value).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    head=dict(loss=dict(
        _delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original',
        loss_weight=1.0)))
