# RM paper Table 1 (CIFAR-10, PyramidNet-200 alpha 240, 300 epochs, CutMix's recipe, 2 GPUs x 32):
# + Label Smoothing 0.1 (Szegedy et al.), top-1 err 3.74.
_base_ = './pyramidnet200-a240_2xb32_cifar10.py'

model = dict(
    head=dict(loss=dict(
        _delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original',
        loss_weight=1.0)))
