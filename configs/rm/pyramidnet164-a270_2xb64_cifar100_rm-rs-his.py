# RM paper Table 2 (ablation, CIFAR-100, PyramidNet-164 alpha 270, 200 epochs): "RS + HIS"
# row, top-1 err 14.81. RecursiveMix's historical mix (resize-fill the previous mixed batch)
# without the consistency loss: a plain ImageClassifier with the RM batch augment. Adding
# the consistency loss ("+CL", 14.65) is pyramidnet164-a270_2xb64_cifar100_rm.py.
_base_ = './pyramidnet164-a270_2xb64_cifar100_rm-rs.py'

model = dict(train_cfg=dict(augments=dict(use_history=True)))
