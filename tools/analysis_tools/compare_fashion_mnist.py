"""Offline accuracy comparison on real data: baseline / Mixup / CutMix / RecursiveMix on
Fashion-MNIST with the demo network, several seeds each, same epochs and schedule.

The paper's other comparators that apply to this grey 28x28 network run with ``--methods``:
``dropblock``, ``manifold-mixup``, ``feature-cutmix``, ``moex``, ``cutmix-moex``, ``puzzlemix``
(StyleCutMix does not apply: its style network takes RGB images and pretrained weights).

Each (method, seed) trains with ``tools/train.py`` into ``<work-root>/<method>_seed<seed>``
(a finished run is skipped, so an interrupted comparison resumes), then the top-1 error on the
10k test images after the last epoch is collected into a mean +- std table (markdown, printed
and written to ``<work-root>/results.md``) and a bar plot (PNG).

    python tools/analysis_tools/compare_fashion_mnist.py --seeds 0 1 2 \\
        --out docs/images/fashion_mnist_comparison.png
    python tools/analysis_tools/compare_fashion_mnist.py --summary-only   # table from runs

On a GPU, where one run of this small network leaves the device mostly idle, ``--jobs N``
trains N runs at once (each run's output then goes to ``<work-root>/<method>_seed<seed>.log``);
``--rm-cfg-options`` are given to the RM runs only (e.g.
``model.roi_head.omega=0.2``).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmrm.analysis.work_dirs import best_metric  # noqa: E402

METHODS = {
    'baseline': 'configs/rm/resnet18-w16_1xb128_fashion-mnist.py',
    'mixup': 'configs/rm/resnet18-w16_1xb128_fashion-mnist_mixup.py',
    'cutmix': 'configs/rm/resnet18-w16_1xb128_fashion-mnist_cutmix.py',
    'rm': 'configs/rm/resnet18-w16_1xb128_fashion-mnist_rm.py',
}
#: the paper's other comparators (issue #12), run on request with --methods
METHODS.update({
    m: f'configs/rm/resnet18-w16_1xb128_fashion-mnist_{m}.py'
    for m in ('dropblock', 'manifold-mixup', 'feature-cutmix', 'moex', 'cutmix-moex', 'puzzlemix')
})
DEFAULT_METHODS = ['baseline', 'mixup', 'cutmix', 'rm']
DONE = 'comparison-done.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', default=DEFAULT_METHODS, choices=list(METHODS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--work-root', default=osp.join(ROOT, 'work_dirs/fashion_mnist_compare'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/fashion_mnist'))
    parser.add_argument('--out', default=osp.join(ROOT, 'docs/images/fashion_mnist_comparison.png'))
    parser.add_argument('--summary-only', action='store_true', help='do not train')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra options for every run (e.g. train_cfg.max_epochs=2)')
    parser.add_argument('--rm-cfg-options', nargs='+', default=[],
                        help='extra options for the RM runs only (their model has roi_head)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at the same time (GPU); 1 on a CPU machine')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    return args


def run_one(args, method, seed):
    work_dir = osp.join(args.work_root, f'{method}_seed{seed}')
    if osp.isfile(osp.join(work_dir, DONE)):
        return work_dir
    opts = [f'randomness.seed={seed}'] + [
        f'{split}.dataset.data_root={args.data_root}'
        for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += args.cfg_options + (args.rm_cfg_options if method == 'rm' else [])
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), osp.join(ROOT, METHODS[method]),
           '--work-dir', work_dir, '--cfg-options', *opts]
    print(f'[compare] {method} seed {seed}: {" ".join(cmd)}', flush=True)
    start = time.time()
    if args.jobs == 1:
        subprocess.run(cmd, check=True, cwd=ROOT)
    else:  # concurrent runs: one log file each instead of interleaved output
        os.makedirs(args.work_root, exist_ok=True)
        with open(work_dir + '.log', 'w') as log:
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    print(f'[compare] {method} seed {seed} done in {time.time() - start:.0f} s', flush=True)
    top1 = best_metric(work_dir)
    if top1 is None:
        raise RuntimeError(f'{work_dir}: no accuracy/top1 in the logs')
    with open(osp.join(work_dir, DONE), 'w') as f:
        json.dump(dict(method=method, seed=seed, top1=top1, wall_s=time.time() - start), f)
    return work_dir


def collect(args):
    rows = []
    for method in args.methods:
        runs = []
        for seed in args.seeds:
            path = osp.join(args.work_root, f'{method}_seed{seed}', DONE)
            if osp.isfile(path):
                with open(path) as f:
                    runs.append(json.load(f))
        if not runs:
            continue
        errors = [100. - r['top1'] for r in runs]
        rows.append(dict(method=method, errors=errors, mean=statistics.mean(errors),
                         std=statistics.stdev(errors) if len(errors) > 1 else 0.,
                         wall_min=statistics.mean(r['wall_s'] for r in runs) / 60))
    return rows


def format_table(rows):
    lines = ['| method | top-1 error (%) mean ± std | runs (seed errors) | min / run |',
             '| --- | --- | --- | --- |']
    for r in rows:
        seeds = ', '.join(f'{e:.2f}' for e in r['errors'])
        lines.append(f"| {r['method']} | {r['mean']:.2f} ± {r['std']:.2f} | {seeds} | "
                     f"{r['wall_min']:.1f} |")
    return '\n'.join(lines)


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = [r['method'] for r in rows]
    ax.bar(names, [r['mean'] for r in rows], yerr=[r['std'] for r in rows], capsize=4,
           color=['#999999', '#6699cc', '#66aa66', '#cc5544', '#bb88cc', '#ddaa44', '#44aaaa',
                  '#aa6644', '#7777dd', '#99bb55'][:len(rows)])
    for i, r in enumerate(rows):
        ax.scatter([i] * len(r['errors']), r['errors'], color='black', s=8, zorder=3)
    lo = min(min(r['errors']) for r in rows)
    hi = max(max(r['errors']) for r in rows)
    ax.set_ylim(max(0, lo - (hi - lo) - 0.5), hi + (hi - lo) * 0.5 + 0.2)
    if len(rows) > 4:
        ax.tick_params(axis='x', labelrotation=30, labelsize=7)
    ax.set_ylabel('top-1 error (%)')
    ax.set_title('Fashion-MNIST, ResNet-18-w16, mean ± std over seeds', fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if not args.summary_only:
        # seed-major: a stopped comparison still leaves every method comparable
        runs = [(method, seed) for seed in args.seeds for method in args.methods]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(run_one, args, m, s) for m, s in runs]:
                future.result()
    rows = collect(args)
    if not rows:
        sys.exit('compare_fashion_mnist: no finished runs')
    table = format_table(rows)
    print(table)
    os.makedirs(args.work_root, exist_ok=True)
    with open(osp.join(args.work_root, 'results.md'), 'w') as f:
        f.write(table + '\n')
    plot(rows, args.out)
    print(f'plot: {args.out}')
    return rows


if __name__ == '__main__':
    main()
