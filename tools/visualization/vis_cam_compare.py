"""Class activation maps of several checkpoints side by side (paper Figs. 6-7).

Plain CAM (Zhou et al., "Learning Deep Features for Discriminative Localization", the paper's
[65]): for a classifier whose head is a linear ``fc`` on the global-average-pooled last backbone
map F, the map of class k is ``sum_c w_kc F_c``, upsampled to the input and min-max normalised.
No extra dependency (no pytorch-grad-cam needed).

Each image goes through the test pipeline of each config (without the file loading step) and
the model's data preprocessor; the figure has one row per image and one column per model (plus
the input), each cell titled with the class of the map and its probability. By default each
model shows its own top-1 class; ``--target`` fixes the class for all models (Fig. 7 style:
the classes mixed into an RM sample, e.g. from ``vis_recursive_mix.py --save-samples``).

    python tools/visualization/vis_cam_compare.py img1.png img2.png \\
        --configs configs/rm/X_mixup.py configs/rm/X_cutmix.py configs/rm/X_rm.py \\
        --checkpoints mixup.pth cutmix.pth rm.pth [--names Mixup CutMix RM] --out cam.png
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--configs', nargs='+', required=True, help='one config per model')
    parser.add_argument('--checkpoints', nargs='+', required=True,
                        help='one checkpoint per config (RM training or deploy checkpoints)')
    parser.add_argument('--names', nargs='+', help='column names (default: config names)')
    parser.add_argument('--target', type=int, nargs='+', default=None,
                        help='class index per image (one value: for all images); default: '
                        'each model\'s prediction')
    parser.add_argument('--out', default='cam_compare.png', help='PNG to write')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat-map opacity')
    parser.add_argument('--cell-size', type=float, default=2.2, help='inches per cell')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def load_model(config: str, checkpoint: str, device: str = 'cpu'):
    """Build the config's model and load ``checkpoint``: missing weights are an error,
    RM-only weights (``roi_head.*``) in a checkpoint for a plain model are ignored.
    Returns ``(cfg, model, classes)``, classes from the checkpoint's ``dataset_meta``."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmrm.analysis.variants import build_model
    from mmrm.utils import RM_ONLY_PREFIXES, load_config, model_config
    cfg = load_config(config)
    model = build_model(model_config(cfg), device)
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    own = model.state_dict()
    unexpected = [k for k in state if k not in own and not k.startswith(RM_ONLY_PREFIXES)]
    missing = [k for k in own if k not in state]
    if missing or unexpected:
        raise RuntimeError(f'{checkpoint} does not fit {config}: missing {missing[:5]}'
                           f'{"..." if len(missing) > 5 else ""}, unexpected {unexpected[:5]}'
                           f'{"..." if len(unexpected) > 5 else ""}')
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    model.eval()
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    classes = (meta or {}).get('dataset_meta', {}).get('classes')
    return cfg, model, classes


def test_pipeline(cfg):
    """The config's test pipeline without the file-loading step (images come as arrays)."""
    from mmcv.transforms import Compose
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or cfg['train_dataloader']
    steps = [dict(t) for t in loader['dataset'].get('pipeline', [dict(type='PackInputs')])
             if 'LoadImageFromFile' not in str(t.get('type'))]
    from mmpretrain.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(t) for t in steps])


def prepare(model, cfg, path: str):
    """(normalised input (1, C, H, W), the image the model sees as (H, W, C) uint8)."""
    import mmcv

    from mmrm.visualization.mix_grid import to_images
    pre = model.data_preprocessor
    channels = pre.mean.numel() if pre._enable_normalize else 3
    img = mmcv.imread(path, flag='grayscale' if channels == 1 else 'color')
    data = test_pipeline(cfg)(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
                                   img_path=path))
    batch = pre(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)
    inputs = batch['inputs']
    mean, std = (pre.mean, pre.std) if pre._enable_normalize else (None, None)
    shown = to_images(inputs, mean, std)[0]
    if shown.shape[-1] == 3 and not getattr(pre, 'to_rgb', False):
        shown = shown[..., ::-1]  # mmcv reads BGR; show RGB
    return inputs, shown


def main(argv=None):
    import numpy as np

    from mmrm.visualization.cam import class_activation_maps, overlay_cam
    from mmrm.visualization.plots import pyplot
    args = parse_args(argv)
    if len(args.configs) != len(args.checkpoints):
        raise SystemExit('give one checkpoint per config')
    names = args.names or [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(names) != len(args.configs):
        raise SystemExit('give one name per config')
    targets = args.target
    if targets is not None and len(targets) == 1:
        targets = targets * len(args.images)
    if targets is not None and len(targets) != len(args.images):
        raise SystemExit('give one --target per image, or one for all')

    results = []  # per model: list of (shown image, cam, class, prob)
    classes = None
    for config, ckpt in zip(args.configs, args.checkpoints):
        cfg, model, ckpt_classes = load_model(config, ckpt, args.device)
        classes = classes or ckpt_classes
        col = []
        for i, path in enumerate(args.images):
            inputs, shown = prepare(model, cfg, path)
            cam, cls, prob = class_activation_maps(
                model, inputs.to(args.device), None if targets is None else [targets[i]])
            col.append((shown, cam[0].numpy(), cls[0], prob[0]))
        results.append(col)

    plt = pyplot()
    rows, cols = len(args.images), len(names) + 1
    fig, axes = plt.subplots(rows, cols, squeeze=False,
                             figsize=(args.cell_size * cols, (args.cell_size + 0.3) * rows))
    for i, path in enumerate(args.images):
        shown = results[0][i][0]
        ax = axes[i][0]
        ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown,
                  cmap='gray' if shown.shape[-1] == 1 else None)
        ax.set_title(osp.basename(path)[:24], fontsize=8)
        for j, name in enumerate(names):
            shown_j, cam, cls, prob = results[j][i]
            ax = axes[i][j + 1]
            ax.imshow(overlay_cam(shown_j, cam, args.alpha))
            label = classes[cls] if classes and cls < len(classes) else str(cls)
            ax.set_title(f'{name}\n{label}: {prob:.2f}', fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f'wrote {args.out}: {rows} images x {len(names)} models')
    return dict(out=args.out, results=[[(np.asarray(c), k, p) for _, c, k, p in col]
                                       for col in results], names=names)


if __name__ == '__main__':
    main()
