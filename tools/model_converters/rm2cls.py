"""Export an RMClassifier checkpoint as a plain mmpretrain ImageClassifier checkpoint.

Drops the RoI consistency head (``roi_head.*``, RM training only) and the optimizer/scheduler
state. The result loads into the same config with ``type='ImageClassifier'`` and no
``roi_head`` with zero missing and zero unexpected keys, and has exactly the baseline's
parameter count (paper Table 10: #P deploy).

    python tools/model_converters/rm2cls.py work_dirs/rm/epoch_300.pth rm_r50_cls.pth
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmrm  # noqa: E402,F401  (registers safe checkpoint globals)
from mmrm.utils import convert_rm_checkpoint  # noqa: E402
from mmrm.engine import CheckpointError  # noqa: E402
from mmrm.utils.convert import WEIGHTS, read_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='RMClassifier checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--weights', choices=WEIGHTS, default='ema',
                        help='of a checkpoint saved with EMAHook: the EMA-averaged weights '
                        '(default; its state_dict, what the EMA run validated) or the raw '
                        'trained ones (its ema_state_dict)')
    args = parser.parse_args(argv)
    try:
        ckpt = read_checkpoint(args.src)
    except CheckpointError as exc:  # names the file and what is wrong with it
        raise SystemExit(f'rm2cls: {exc}') from None
    out, dropped = convert_rm_checkpoint(ckpt, weights=args.weights)
    print(f"weights: {out['meta']['mmrm_converted']['weights']}")
    torch.save(out, args.dst)
    params = sum(v.numel() for k, v in out['state_dict'].items() if v.is_floating_point()
                 and 'running_' not in k)
    print(f'dropped {len(dropped)} RM-only keys: {", ".join(dropped) or "none"}')
    print(f'wrote {args.dst}: {len(out["state_dict"])} keys, {params / 1e6:.2f}M parameters')


if __name__ == '__main__':
    main()
