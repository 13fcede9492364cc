"""Check that a downstream config loads its pretrained backbone with zero missing / unexpected /
shape-mismatched keys (exit status 1 otherwise).

    python tools/analysis_tools/check_backbone_init.py \\
        configs/downstream/mmdet/atss_r50_fpn_1x_coco.py --checkpoint backbone.pth

``--checkpoint`` sets ``model.backbone.init_cfg.checkpoint`` (a top-level ``checkpoint=``
variable of a config is substituted when the file is parsed, so ``--cfg-options
checkpoint=...`` would not reach the backbone). See :mod:`mmrm.analysis.downstream`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

import mmrm  # noqa: E402,F401  (safe checkpoint globals)
from mmrm.analysis.downstream import check_backbone_init  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Check that a downstream config loads its pretrained backbone with zero '
        'missing / unexpected / shape-mismatched keys.')
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='sets model.backbone.init_cfg.checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = check_backbone_init(args.config, args.checkpoint, args.cfg_options)
    print(report)
    print('OK' if report.ok else 'MISMATCH')
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
