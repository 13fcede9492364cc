# Offline comparison, RM ablation "no HIS" (the paper's RS row of Table 2): the partner is a
# shuffled sample of the current batch, resized whole into RM's box; without a history there is
# no last prediction, so no consistency loss either.
_base_ = './resnet18-w16_1xb128_fashion-mnist_rm-no-cl.py'
model = dict(train_cfg=dict(augments=dict(use_history=False)))
