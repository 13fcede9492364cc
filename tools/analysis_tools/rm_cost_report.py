"""Training cost of RecursiveMix against the baseline, Mixup and CutMix (paper Table 10).

From one RM config the tool derives four models of the same network (baseline: plain
ImageClassifier without batch augment; + Mixup; + CutMix, their augments taken from the sibling
``*_mixup.py`` / ``*_cutmix.py`` configs when they exist, else alpha 1; + RM: the config itself)
and reports for each:

- parameters at training and at deployment (after ``convert_rm_checkpoint``, what
  ``tools/model_converters/rm2cls.py`` exports; the RM deploy weights are also loaded strictly
  into the baseline model to prove they are a plain ImageClassifier);
- FLOPs of one inference forward on a ``1 x C x H x W`` input (``mmengine.analysis``, one
  multiply-add counted as one FLOP, the convention of the paper's 4.12 G);
- peak memory of ``--memory-steps`` training steps, each variant in a fresh child process
  (CPU: peak RSS growth of the child over its RSS before the model is built, i.e. parameters,
  gradients, optimizer state, activations, RM history and allocator overhead; CUDA:
  ``torch.cuda.max_memory_allocated``);
- time of one full training step (``model.train_step``: data preprocessor with the batch
  augment, forward, backward, optimizer step) on ``--batch`` random images, measured
  interleaved in this process (A B C D A B C D ...), median over ``--repeats`` rounds;

then prints a markdown table and the ratios RM / CutMix and RM / baseline.

``--compile [BACKEND]`` (default inductor) also times, in the same interleaved rounds and on the
same batches, a twin of the baseline, CutMix and RM whose ``train_step`` is compiled as
MMEngine's ``compile=True`` does (``torch.compile(model.train_step)``), after
``--compile-warmup`` untimed rounds of the twins, and prints compiled against eager steps with
dynamo's graphs, graph breaks and what was compiled after the warm-up (0: every box reused the
compiled graphs).

    python tools/analysis_tools/rm_cost_report.py configs/rm/resnet50_8xb32_in1k_rm.py \\
        [--batch 8] [--shape 3x224x224] [--repeats 10] [--profile 5] [--compile] [--json out.json]
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmengine.config import DictAction  # noqa: E402

from mmrm.analysis.cost import (cost_report, format_compile_table,  # noqa: E402
                               format_cost_table)
from mmrm.analysis.profiling import format_profile_diff  # noqa: E402
from mmrm.utils import load_config, shape_type  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='an RM config (e.g. configs/rm/*_rm.py)')
    parser.add_argument('--batch', type=int, default=8, help='images per training step')
    parser.add_argument('--shape', type=shape_type('CxHxW'), default=None,
                        help='input CxHxW (default: the backbone in_channels x 224 x 224)')
    parser.add_argument('--repeats', type=int, default=10, help='timed interleaved rounds')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--memory', choices=['auto', 'fork', 'spawn', 'none'], default='auto',
                        help='how the fresh per-variant memory process starts (auto: fork on '
                        'CPU, spawn on CUDA); none skips the memory measurement')
    parser.add_argument('--memory-steps', type=int, default=3,
                        help='training steps of each memory measurement')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if any)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--profile', type=int, default=0, metavar='STEPS',
                        help='also profile STEPS training steps of RM and CutMix and print '
                        'the operators that make the difference (torch.profiler)')
    parser.add_argument('--compile', nargs='?', const='inductor', default=None,
                        metavar='BACKEND', help='also time each variant with its train_step '
                        'compiled (torch.compile backend, default inductor; eager / aot_eager '
                        'capture the same graphs without code generation)')
    parser.add_argument('--compile-warmup', type=int, default=3,
                        help='untimed steps of each compiled model first (it compiles there)')
    parser.add_argument('--json', help='also write the full report (all times) as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, as tools/train.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    report = cost_report(cfg, args.config, batch=args.batch, shape=args.shape,
                         repeats=args.repeats, warmup=args.warmup, device=args.device,
                         memory=args.memory, memory_steps=args.memory_steps,
                         threads=args.threads, profile_steps=args.profile,
                         compile_cfg=dict(backend=args.compile) if args.compile else None,
                         compile_warmup=args.compile_warmup)
    print()
    print(f"{osp.basename(args.config)}: batch {report['batch']}, input "
          f"{'x'.join(map(str, report['shape']))}, device {report['device']}, "
          f"{report['threads']} threads, {report['repeats']} rounds")
    print(f"memory: {report['memory_measure']} ({report['memory_steps']} training steps)")
    for kind, (src, aug) in report['augment_sources'].items():
        print(f'{kind}: {aug} ({src})')
    print(f"RM deploy weights load strictly into the baseline: "
          f"{report['deploy_loads_into_baseline']}")
    print()
    print(format_cost_table(report))
    if report['compile_warmup'] is not None:
        print()
        print(f"torch.compile({report['compile_cfg']}) of train_step, as MMEngine's "
              f"compile=True, after {report['compile_warmup']} untimed rounds of the compiled "
              'models (Mixup is timed eager only):')
        print(format_compile_table(report))
    if report['profiles']:
        for key in ('cpu_us', 'dev_us') if report['device'].startswith('cuda') else ('cpu_us', ):
            print()
            print(format_profile_diff(report['profiles'], key=key))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
