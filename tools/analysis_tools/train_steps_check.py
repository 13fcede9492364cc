"""Run N seeded training steps of a config on its real data and count the steps that fail.

Each step ``i`` reseeds every generator with ``seed + i`` (so a failing step is reproducible
alone with ``--first i --steps 1``), takes the next batch of the config's training loader and
runs ``model.train_step`` with the config's optimiser. Failures are caught, counted and grouped
by message; for PuzzleMix the block count of each step is reported too. Exit status 1 if any
step failed.

    python tools/analysis_tools/train_steps_check.py \\
        configs/rm/resnet18-w16_1xb128_fashion-mnist_puzzlemix.py --steps 50 --batch-size 16
"""
import argparse
import collections
import os.path as osp
import sys
import traceback

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

from mmrm.analysis.variants import build_train_loader  # noqa: E402
from mmrm.utils import load_config, model_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--first', type=int, default=0, help='index of the first step')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def run_steps(cfg, steps: int, first: int = 0, seed: int = 0, batch_size=None):
    """``(results, model)``: one ``(step, error or None, note)`` per step."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import set_random_seed
    from mmpretrain.registry import MODELS

    set_random_seed(seed)
    model = MODELS.build(model_config(cfg))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batches = iter(build_train_loader(cfg, seed, batch_size))
    for _ in range(first):
        next(batches)
    results = []
    for step in range(first, first + steps):
        data = next(batches)
        set_random_seed(seed + step)
        try:
            model.train_step(data, optim)
            error = None
        except Exception as exc:  # counted, not raised: the point is the failure rate
            error = f'{type(exc).__name__}: {exc}'.splitlines()[0]
            traceback.print_exc(limit=-3)
        note = ''
        puzzle = getattr(model, 'puzzle_mix', None)
        if puzzle is not None and puzzle.last_mask is not None:
            note = f'blocks {puzzle.last_mask.shape[-1]}'
            puzzle.last_mask = None
        results.append((step, error, note))
    return results, model


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    results, _ = run_steps(cfg, args.steps, args.first, args.seed, args.batch_size)
    for step, error, note in results:
        print(f'step {step:4d}: {"FAILED " + error if error else "ok"}'
              f'{"  (" + note + ")" if note else ""}')
    failed = collections.Counter(e for _, e, _ in results if e)
    notes = collections.Counter(n for _, _, n in results if n)
    print(f'\n{args.config}: {len(results) - sum(failed.values())} ok, '
          f'{sum(failed.values())} failed of {len(results)} steps '
          f'(seed {args.seed}, batch {args.batch_size or cfg.train_dataloader.batch_size})')
    for note, count in sorted(notes.items()):
        print(f'  {note}: {count} steps')
    for error, count in failed.most_common():
        print(f'  {count}x {error}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
