"""Extract the backbone of an RM (or any mmpretrain) classification checkpoint for downstream
repos (MMDetection, MMSegmentation, ...), reporting what was dropped.

The source is a checkpoint file or a training work dir; a work dir gives its BEST checkpoint
(``best_*.pth``, what ``default_hooks.checkpoint.save_best`` keeps), the one the RM authors
fine-tune (their detection / segmentation logs load ``fold1_best.pth``)::

    python tools/model_converters/rm2backbone.py work_dirs/resnet50_8xb32_in1k_rm \
        work_dirs/resnet50_8xb32_in1k_rm/backbone.pth

By default the keys keep their ``backbone.`` prefix, so downstream configs load either this file
or the full checkpoint with the same line:
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
``--strip-prefix`` writes bare backbone keys instead (``init_cfg=dict(type='Pretrained',
checkpoint=...)`` on the backbone). MMDetection's ``PyramidVisionTransformer(V2)`` needs that:
its ``init_weights`` ignores ``prefix`` (see ``configs/downstream/README.md``)::

    python tools/model_converters/rm2backbone.py work_dirs/pvt-v2-b1_8xb128_in1k_rm \
        work_dirs/pvt-v2-b1_8xb128_in1k_rm/backbone.pth --strip-prefix

    python tools/model_converters/rm2backbone.py work_dirs/rm/epoch_300.pth rm_r50_backbone.pth  # a given epoch

``--swin-stage-norms`` gives a classification Swin the LayerNorms of all four stage outputs that
MMDetection's / MMSegmentation's Swin have (``norm0``-``norm2`` at LayerNorm's initial values;
see :func:`mmrm.utils.add_swin_stage_norms`)::

    python tools/model_converters/rm2backbone.py work_dirs/swin-tiny_16xb64_in1k_rm \
        work_dirs/swin-tiny_16xb64_in1k_rm/backbone.pth --swin-stage-norms
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmrm  # noqa: E402,F401  (registers safe checkpoint globals)
from mmrm.experiments.work_dirs import best_checkpoint as find_best_checkpoint  # noqa: E402
from mmrm.utils import add_swin_stage_norms, convert_rm_checkpoint  # noqa: E402
from mmrm.engine import CheckpointError  # noqa: E402
from mmrm.utils.convert import WEIGHTS, read_checkpoint  # noqa: E402


def best_checkpoint(work_dir: str) -> str:
    """The one ``best_*.pth`` of a work dir (:func:`mmrm.experiments.work_dirs.best_checkpoint`),
    or exit with its message."""
    try:
        return find_best_checkpoint(work_dir)
    except FileNotFoundError as exc:
        raise SystemExit(f'rm2backbone: {exc}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='classification checkpoint (RMClassifier or ImageClassifier), '
                        'or a work dir: its best_*.pth')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--strip-prefix', action='store_true',
                        help='remove the "backbone." prefix from the keys')
    parser.add_argument('--swin-stage-norms', action='store_true',
                        help='Swin: add the stage-output LayerNorms that MMDetection\'s and '
                        'MMSegmentation\'s Swin have (norm0-norm2) at their initial values')
    parser.add_argument('--weights', choices=WEIGHTS, default='ema',
                        help='of a checkpoint saved with EMAHook: the EMA-averaged weights '
                        '(default; its state_dict, what the EMA run validated) or the raw '
                        'trained ones (its ema_state_dict)')
    args = parser.parse_args(argv)
    src = best_checkpoint(args.src) if osp.isdir(args.src) else args.src
    if src != args.src:
        print(f'best checkpoint of {args.src}: {osp.basename(src)}')
    try:
        ckpt = read_checkpoint(src)
    except CheckpointError as exc:  # names the file and what is wrong with it
        raise SystemExit(f'rm2backbone: {exc}') from None
    out, dropped = convert_rm_checkpoint(ckpt, backbone_only=True, strip_prefix=args.strip_prefix,
                                          weights=args.weights)
    if args.swin_stage_norms:
        added = add_swin_stage_norms(out['state_dict'],
                                     prefix='' if args.strip_prefix else 'backbone.')
        print(f'added {len(added)} stage-output LayerNorm weights at their initial values: '
              f'{", ".join(sorted({k.rsplit(".", 1)[0] for k in added})) or "none"}')
    print(f"weights: {out['meta']['mmrm_converted']['weights']}")
    torch.save(out, args.dst)
    groups = sorted({k.split('.')[0] for k in dropped})
    print(f'dropped {len(dropped)} non-backbone keys (from: {", ".join(groups) or "none"})')
    print(f'wrote {args.dst}: {len(out["state_dict"])} backbone keys')
    if not args.strip_prefix and any(
            k.startswith('backbone.layers.0.0.projection.') for k in out['state_dict']):
        print('note: this looks like a PVT backbone; MMDetection\'s PyramidVisionTransformer'
              '(V2) ignores init_cfg.prefix, so give it a checkpoint written with --strip-prefix')


if __name__ == '__main__':
    main()
