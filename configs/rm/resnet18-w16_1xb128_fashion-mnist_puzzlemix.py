# Offline comparison: + PuzzleMix with the authors' settings (beta 1.2, gamma 0.5, eta 0.2,
# 3 labels, transport, t_eps 0.8, alpha 1), block counts dividing 28 (2, 4, 7, 14) instead of
# their 2^k, neighbourhood 4 (their small-image default; per block count the largest divisor of
# the block side up to 4: 2 for blocks of 14 px, 1 for 7, 4 for 4, 2 for 2).
_base_ = './resnet18-w16_1xb128_fashion-mnist.py'
model = dict(
    type='PuzzleMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    puzzle_mix=dict(type='PuzzleMix', alpha=1.0, prob=1.0, block_nums=(2, 4, 7, 14),
                    n_labels=3, neigh_size=4, beta=1.2, gamma=0.5, eta=0.2, transport=True,
                    t_eps=0.8))
