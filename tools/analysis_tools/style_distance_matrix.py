"""Class style-distance matrix for StyleCutMix's auto-gamma (the StyleMix authors'
makeStyleDistanceMatrix.py): every training image of the config's dataset through the
pretrained AdaIN encoder named by its StyleCutMix augment, per-class mean style vectors, their
mean squared differences. Saves a (K, K) tensor for ``style_distance``.

    python tools/analysis_tools/style_distance_matrix.py \\
        configs/rm/pyramidnet200-a240_2xb32_cifar10_stylecutmix.py \\
        --out checkpoints/stylemix/styleDistanceMatrix10.pt
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

from mmrm.analysis.style_distance import class_style_distance  # noqa: E402
from mmrm.analysis.variants import build_train_loader, num_classes_of  # noqa: E402
from mmrm.utils import load_config, model_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a config whose train_cfg.augments is a StyleCutMix')
    parser.add_argument('--out', required=True, help='where the (K, K) tensor goes (.pt)')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--max-batches', type=int, default=None, help='stop early (tests)')
    parser.add_argument('--device', default='cuda' if _cuda() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def _cuda():
    import torch
    return torch.cuda.is_available()


def main(argv=None):
    import torch
    from mmpretrain.registry import MODELS

    from mmrm.models.batch_augments.adain import AdaINStyleTransfer
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    model = model_config(cfg)
    aug = (model.get('train_cfg') or {}).get('augments') or {}
    if not isinstance(aug, dict) or aug.get('type') != 'StyleCutMix':
        sys.exit(f'{args.config}: model.train_cfg.augments is not a StyleCutMix')
    net = AdaINStyleTransfer(aug.get('encoder_checkpoint'), aug.get('decoder_checkpoint'),
                             aug.get('random_init', False)).to(args.device)
    pre_cfg = dict(model.get('data_preprocessor') or {}, type='ClsDataPreprocessor')
    pre_cfg.pop('batch_augments', None)
    pre = MODELS.build(pre_cfg).to(args.device)
    loader = build_train_loader(cfg, None, args.batch_size, args.num_workers)
    matrix = class_style_distance(net, loader, num_classes_of(model),
                                  aug.get('style_size', 224), pre, args.max_batches)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(matrix.cpu(), args.out)
    print(f'style distance matrix {tuple(matrix.shape)} -> {args.out}')
    return matrix


if __name__ == '__main__':
    main()
