# RM paper Table 6 (ImageNet, ResNet-50, 300 epochs; 8 GPUs x 32 with lr 0.1 = the paper's
# 512 / 0.2 scaled linearly, see README.md):
# + PuzzleMix, top-1 err 21.24: the Puzzle Mix authors' 300-epoch ResNet-50 settings
# (snu-mllab/PuzzleMix cutmix/train.py: --beta 1.0 --mixup_prob 1.0 --transport True, defaults
# n_labels 3, neigh_size min(4, 2) = 2 for ImageNet, p_beta 1.2, p_gamma 0.5, p_eta 0.2,
# t_eps 0.8, 2^randint(1, 5) blocks per side). Needs gco-wrapper (requirements/runtime.txt).
_base_ = './resnet50_8xb32_in1k.py'

model = dict(
    type='PuzzleMixClassifier',
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    puzzle_mix=dict(
        type='PuzzleMix',
        alpha=1.0,
        prob=1.0,
        block_nums=(2, 4, 8, 16),
        n_labels=3,
        neigh_size=2,
        beta=1.2,
        gamma=0.5,
        eta=0.2,
        transport=True,
        t_eps=0.8))
