"""Compose the offline detection / segmentation dataset: canvases of Fashion-MNIST items with
COCO instance annotations (mmdet's ``CocoDataset`` / ``CocoMetric``) and semantic label maps
(mmseg's ``BaseSegDataset`` / ``IoUMetric``). See :mod:`mmrm.datasets.fashion_mnist_canvases`.

Three disjoint splits: train canvases take items only from the train carve of Fashion-MNIST's
training file, val canvases only from its validation carve (1/12 of each class, seed 0, as
``FashionMNISTSplit``), test canvases only from Fashion-MNIST's test file; the result is a function
of the options and ``--seed``::

    python tools/dataset_converters/fashion_mnist_canvases.py \
        --src data/fashion_mnist --out data/fashion_mnist_canvas
"""
import argparse
import os.path as osp
import sys
from dataclasses import fields

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmrm.datasets import CanvasOptions, FashionMNISTMissing, write_canvas_dataset  # noqa: E402

HELP = dict(train_num='train canvases', val_num='val canvases',
            test_num='test canvases (default: as many as val canvases)',
            size='canvas side (pixels)',
            min_items='fewest items per canvas', max_items='most items per canvas',
            min_scale='smallest item scale (of 28 px)', max_scale='largest item scale',
            max_overlap='largest share of an item another may cover',
            mask_threshold='an item pixel belongs to its mask from this grey value (1-255)',
            max_tries='positions drawn per item before it is left out', seed='random seed')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default='data/fashion_mnist',
                        help='Fashion-MNIST IDX files (what `make data` writes)')
    parser.add_argument('--out', default='data/fashion_mnist_canvas', help='output folder')
    for f in fields(CanvasOptions):
        if f.default is None:  # test_num: an int, None meaning as many as val_num
            parser.add_argument('--' + f.name.replace('_', '-'), type=int, default=None,
                                help=HELP[f.name])
            continue
        parser.add_argument('--' + f.name.replace('_', '-'), type=type(f.default),
                            default=f.default, help=f'{HELP[f.name]} (default {f.default})')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    opts = CanvasOptions(**{f.name: getattr(args, f.name) for f in fields(CanvasOptions)})
    try:
        opts.check()
        write_canvas_dataset(args.src, args.out, opts)
    except (FashionMNISTMissing, ValueError) as exc:
        sys.exit(f'fashion_mnist_canvases: {exc}')
    print(f'[canvases] written to {args.out}')


if __name__ == '__main__':
    main()
