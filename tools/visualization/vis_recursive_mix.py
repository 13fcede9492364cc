"""Picture of RecursiveMix training batches, as the real training pipeline makes them
(paper Figs. 1-3).

Builds the config's training dataloader and the model's data preprocessor (with its
RecursiveMix augment), runs ``--iters`` training steps of the preprocessor alone, and writes a
PNG grid: one row per sample, one column per step, so the recursive nesting grows from left to
right. In every cell the boxes mark where the earlier batches sit (red: the box pasted at this
step; orange, yellow, ...: the boxes of earlier steps inside it), and the label weights of the
sample are written underneath. ``--with-cut`` adds a column with the same batches and boxes
but ``resize=False`` (CutMix's cut instead of ResizeFill: the "cut" of Fig. 3, where the label
weights no longer match what is visible).

    python tools/visualization/vis_recursive_mix.py \\
        configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py --iters 4 --num 8 --with-cut \\
        --out recursive_mix.png [--save-samples DIR]

``--save-samples DIR`` also writes the mixed images of the last step as PNGs (as the model
sees them, denormalised), e.g. for ``vis_cam_compare.py`` (paper Fig. 7).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

from mmrm.analysis.variants import build_model, build_train_loader  # noqa: E402
from mmrm.utils import load_config, model_config  # noqa: E402
from mmrm.visualization.mix_grid import (nested_boxes, run_batch_augment_steps,  # noqa: E402
                                         save_mix_grid, to_images)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a config whose model trains with RecursiveMix')
    parser.add_argument('--iters', type=int, default=4, help='training steps (columns)')
    parser.add_argument('--num', type=int, default=8, help='samples (rows)')
    parser.add_argument('--out', default='recursive_mix.png', help='PNG to write')
    parser.add_argument('--with-cut', action='store_true',
                        help='add a column with resize=False on the same batches and boxes')
    parser.add_argument('--last-only', action='store_true',
                        help='show only the last step instead of every step')
    parser.add_argument('--topk', type=int, default=4, help='label weights shown per cell')
    parser.add_argument('--seed', type=int, default=0, help='loader shuffle and box seed')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='override the loader batch size (default: the config\'s)')
    parser.add_argument('--num-workers', type=int, default=0, help='loader workers')
    parser.add_argument('--cell-size', type=float, nargs=2, default=(2.0, 2.75),
                        metavar=('W', 'H'), help='inches per cell (at 80 dpi)')
    parser.add_argument('--save-samples', help='also write the last step\'s images here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, as tools/train.py')
    return parser.parse_args(argv)


def rm_preprocessor(cfg):
    """The data preprocessor of the config's model, which must hold a RecursiveMix augment."""
    model = build_model(model_config(cfg))
    pre = model.data_preprocessor
    augs = getattr(getattr(pre, 'batch_augments', None), 'augments', None) or []
    if not any(hasattr(a, 'history_inputs') for a in augs):
        raise ValueError('the config\'s model has no RecursiveMixBatchAugment in its data '
                         'preprocessor (model.train_cfg.augments)')
    return pre


def main(argv=None):
    import numpy as np
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    pre = rm_preprocessor(cfg)
    loader = build_train_loader(cfg, args.seed, args.batch_size, args.num_workers)
    batches = [b for _, b in zip(range(args.iters), loader)]
    classes = loader.dataset.metainfo.get('classes') or []
    mean, std = (pre.mean, pre.std) if pre._enable_normalize else (None, None)

    np.random.seed(args.seed)
    steps = run_batch_augment_steps(pre, batches, args.iters)
    size = tuple(steps[-1]['inputs'].shape[-2:])
    columns = []
    shown = range(len(steps) - 1, len(steps)) if args.last_only else range(len(steps))
    for t in shown:
        s = steps[t]
        columns.append(dict(name=f'RM step {t + 1} (\u03bb={s["lam"]:.2f})',
                            images=to_images(s['inputs'], mean, std), scores=s['scores'],
                            boxes=nested_boxes([st['box'] for st in steps[:t + 1]], size)))
    if args.with_cut:
        np.random.seed(args.seed)  # the same boxes
        cut = run_batch_augment_steps(pre, batches, args.iters, resize=False)
        assert [c['box'] for c in cut] == [s['box'] for s in steps]
        columns.append(dict(name=f'cut, step {len(cut)}', images=to_images(
            cut[-1]['inputs'], mean, std), scores=cut[-1]['scores'], box=cut[-1]['box']))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_mix_grid(columns, args.out, classes, num_samples=args.num, topk=args.topk,
                  cell_size=tuple(args.cell_size),
                  title=f'RecursiveMix, {len(steps)} training steps '
                  '(red: last paste; inner boxes: earlier steps)')
    print(f'wrote {args.out}: {min(args.num, len(steps[-1]["inputs"]))} samples x '
          f'{len(columns)} columns')
    if args.save_samples:
        save_samples(steps[-1], mean, std, args.save_samples, args.num)
    return dict(steps=steps, columns=columns, out=args.out)


def save_samples(step: dict, mean, std, out_dir: str, num: int):
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    images = to_images(step['inputs'], mean, std)[:num]
    for i, img in enumerate(images):
        path = osp.join(out_dir, f'rm_sample_{i:02d}.png')
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(path)
    print(f'wrote {len(images)} mixed samples to {out_dir}')


if __name__ == '__main__':
    main()
