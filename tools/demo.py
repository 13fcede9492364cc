"""The main job (`make demo`): a short RecursiveMix training on Fashion-MNIST, on CPU.

Trains ``configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py`` with MMEngine's Runner (progress
and ETA in the log), evaluates on the 10k test images, writes a PNG grid of recursive-mixed
training samples, and prints the top-1 accuracy and where everything went.

    python tools/demo.py [--epochs N] [--work-dir DIR] [--cfg-options k=v ...]
"""
import argparse
import importlib.util
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmrm  # noqa: E402,F401
from mmrm.utils import cores_available, cpu_model, fit_loaders_to_cores  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(ROOT, 'configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py')


def draw_mix_grid(argv):
    """tools/visualization/vis_recursive_mix.py: the real pipeline's RM batches, step by step."""
    path = osp.join(ROOT, 'tools/visualization/vis_recursive_mix.py')
    spec = importlib.util.spec_from_file_location('vis_recursive_mix', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--epochs', type=int, help='override the number of epochs')
    parser.add_argument('--grid-iters', type=int, default=4,
                        help='training steps whose recursive nesting the grid shows')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.time()
    cores = cores_available()
    torch.set_num_threads(cores)
    cfg = Config.fromfile(args.config)
    fit_loaders_to_cores(cfg, cores)  # on 2 cores: no loader workers (they slow the demo)
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

    grid = osp.join(args.work_dir, 'recursive_mix_samples.png')
    draw_mix_grid([args.config, '--iters', str(args.grid_iters), '--num', '6', '--with-cut',
                   '--batch-size', str(cfg.train_dataloader.batch_size), '--out', grid,
                   '--cfg-options',
                   f'train_dataloader.dataset.data_root={args.data_root}'])
    ckpt = osp.join(args.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    wall = time.time() - start
    print('\n' + '=' * 72)
    print(f'RecursiveMix demo on Fashion-MNIST: top-1 accuracy {top1:.2f}% '
          f'(test set, 10000 images) after {cfg.train_cfg.max_epochs} epochs')
    print(f'checkpoint:            {ckpt}')
    print(f'recursive-mix samples: {grid}')
    print(f'wall time:             {wall / 60:.1f} min')
    print(f'measured on:           {cpu_model()}, {torch.get_num_threads()} torch threads, '
          f'seed {cfg.randomness.seed} (other CPUs / thread counts give slightly other '
          'numbers; a rerun here gives the same)')
    print('=' * 72)


if __name__ == '__main__':
    main()
