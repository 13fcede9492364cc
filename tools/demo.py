"""The main job (`make demo`): a short RecursiveMix training on Fashion-MNIST, on CPU.

Trains ``configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py`` with MMEngine's Runner (progress
and ETA in the log), evaluates on the 10k test images, writes a PNG grid of recursive-mixed
training samples, and prints the top-1 accuracy and where everything went.

    python tools/demo.py [--epochs N] [--work-dir DIR] [--cfg-options k=v ...]
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmrm  # noqa: E402,F401
from mmrm.utils.mix_grid import run_batch_augment, save_mix_grid, to_images  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(ROOT, 'configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--epochs', type=int, help='override the number of epochs')
    parser.add_argument('--grid-iters', type=int, default=4,
                        help='training steps whose recursive mixing the grid shows')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.time()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[split].dataset.data_root = args.data_root
    if args.epochs:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = args.epochs
        cfg.param_scheduler[-1].T_max = args.epochs - 1
        if args.epochs == 1:  # warm-up only
            cfg.param_scheduler = cfg.param_scheduler[:1]
    # evaluate once, after training, on the test split
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.merge_from_dict(args.cfg_options)

    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    top1 = metrics['accuracy/top1']

    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    pre = model.data_preprocessor
    inputs, scores, boxes = run_batch_augment(pre, runner.train_dataloader, args.grid_iters)
    mean, std = (pre.mean, pre.std) if pre._enable_normalize else (None, None)
    classes = runner.train_dataloader.dataset.metainfo['classes']
    grid = save_mix_grid(
        [dict(name=f'RM step {args.grid_iters}', images=to_images(inputs, mean, std),
              scores=scores, box=boxes[-1])],
        osp.join(args.work_dir, 'recursive_mix_samples.png'), classes,
        title='RecursiveMix training samples (red: last pasted box)')
    ckpt = osp.join(args.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    wall = time.time() - start
    print('\n' + '=' * 72)
    print(f'RecursiveMix demo on Fashion-MNIST: top-1 accuracy {top1:.2f}% '
          f'(test set, 10000 images) after {cfg.train_cfg.max_epochs} epochs')
    print(f'checkpoint:            {ckpt}')
    print(f'recursive-mix samples: {grid}')
    print(f'wall time:             {wall / 60:.1f} min')
    print('=' * 72)


if __name__ == '__main__':
    main()
