"""Score one fine-tuned checkpoint on several canvas splits with one Runner: one start-up
instead of one ``tools/test.py`` process a split (the chain scores every run on the test
canvases for the table and on the val canvases for choices).

    python -m mmrm.experiments.transfer.score CONFIG CHECKPOINT --work-dir DIR --out OUT.json \
        [--cfg-options K=V ...] --test-options K=V ... --val-options K=V ...

writes ``{"metrics": {"test": {...}, "val": {...}}, "empty": [split, ...]}``: each split's
evaluator metrics, as ``tools/test.py --out-item metrics`` dumps them, and the splits on
which mmdet's ``CocoMetric`` logged that the whole set's results were empty (it returns no
metric at all then). The config is prepared as ``tools/test.py`` prepares a detection or
segmentation config (``load_from`` the checkpoint, no pinned memory without CUDA,
``--cfg-options`` merged last); a split's options are merged on top and only its test
dataloader and evaluator are taken. With several splits no loader keeps its worker processes
(``persistent_workers=False``: a finished split's workers would idle beside the next's).
"""
import argparse
import copy
import logging
from typing import Dict

__all__ = ['COCO_EMPTY', 'score_splits']

# what mmdet's CocoMetric.compute_metrics logs (and then returns {}) when no detection is kept
COCO_EMPTY = 'The testing results of the whole dataset is empty'


class _MessageSeen(logging.Handler):
    """Whether a log record whose message contains ``text`` was emitted since ``seen`` was
    last set to False."""

    def __init__(self, text: str):
        super().__init__(logging.DEBUG)
        self.text, self.seen = text, False

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen = True


def score_splits(config: str, checkpoint: str, work_dir: str, options: Dict,
                 split_options: Dict[str, Dict]) -> Dict:
    """``{"metrics": {split: metrics}, "empty": [split, ...]}`` of ``checkpoint`` on each split
    of ``split_options`` (in its order), with one Runner; see the module docstring."""
    import torch
    from mmengine.registry import LOOPS, RUNNERS
    from mmengine.runner import Runner, TestLoop

    from mmrm.utils.stack import load_config_checked

    cfg = load_config_checked(config)
    cfg.update(launcher='none', work_dir=work_dir, load_from=checkpoint)
    loader = dict(pin_memory=torch.cuda.is_available())
    loader.update(cfg.test_dataloader)
    cfg.test_dataloader = loader
    cfg.merge_from_dict(options)
    loops = {}
    for split, opts in split_options.items():
        split_cfg = copy.deepcopy(cfg)
        split_cfg.merge_from_dict(opts)
        if len(split_options) > 1:
            split_cfg.test_dataloader.persistent_workers = False
        loops[split] = (split_cfg.test_dataloader, split_cfg.test_evaluator)
    splits = list(loops)
    cfg.test_dataloader, cfg.test_evaluator = loops[splits[0]]
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    watch = _MessageSeen(COCO_EMPTY)
    runner.logger.addHandler(watch)
    metrics, empty = {}, []
    for split in splits:
        watch.seen = False
        if split == splits[0]:
            metrics[split] = runner.test()  # loads the checkpoint
        else:  # the same model; the loop of test_cfg on this split's loader and evaluator
            loop_cfg = copy.deepcopy(dict(cfg.get('test_cfg') or {}))
            loader, evaluator = loops[split]
            if 'type' in loop_cfg:  # as Runner.build_test_loop builds it
                loop = LOOPS.build(loop_cfg, default_args=dict(
                    runner=runner, dataloader=loader, evaluator=evaluator))
            else:
                loop = TestLoop(**loop_cfg, runner=runner, dataloader=loader,
                                evaluator=evaluator)
            metrics[split] = loop.run()
        if watch.seen:
            empty.append(split)
    runner.logger.removeHandler(watch)
    return dict(metrics=metrics, empty=empty)


def main(argv=None):
    import mmengine
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--out', required=True, help='JSON file written')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        metavar='K=V', help='options of every split')
    for split in ('test', 'val'):
        parser.add_argument(f'--{split}-options', nargs='+', action=DictAction, default=None,
                            metavar='K=V', help=f'options of the {split} split (the split is '
                            'scored when given)')
    args = parser.parse_args(argv)
    splits = {s: v for s, v in (('test', args.test_options), ('val', args.val_options))
              if v is not None}
    if not splits:
        parser.error('give --test-options, --val-options or both: the splits to score')

    from mmrm.engine import CheckpointError
    try:
        result = score_splits(args.config, args.checkpoint, args.work_dir, args.cfg_options,
                              splits)
    except CheckpointError as exc:  # the checkpoint, named with what is wrong with it
        raise SystemExit(f'{parser.prog}: {exc}') from None
    mmengine.dump(result, args.out, indent=1)  # as tools/test.py dumps metrics (numpy scalars)


if __name__ == '__main__':
    from mmrm.utils.stack import exit_on_missing
    exit_on_missing(main)
