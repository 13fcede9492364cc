"""The analysis and visualisation tools (paper Table 10, Figs. 1-8) on tiny inputs, run as users
run them (``main(argv)`` of the script, or a subprocess):

* ``rm_cost_report.py``: RM deploy params == baseline params, RM train params == baseline +
  C*K + K, equal FLOPs, a memory figure per variant, and the printed ratios are the ratios of
  the printed times;
* ``cuda_sync_check.py``: refuses to run without CUDA;
* ``vis_recursive_mix.py``: the grid PNG has the expected pixel size for its rows x columns, and
  each step really holds the previous step resized into its box (the recursion it pictures);
* ``effective_classes.py``: the CLI's plot and CSV;
* ``vis_cam_compare.py``: the PNG layout, and a checkpoint that does not fit is refused;
* ``plot_sweep.py``: means / stds of fake work dirs with known accuracies;
* ``train_steps_check.py``: seeded PuzzleMix steps all pass, and failing steps are counted and
  turn the exit status to 1 (the check can fail).
"""
import copy
import json
import os
import re
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmrm.analysis.variants import build_model, derive_variants
from mmrm.utils import load_config
from tests.utils import (REPO_ROOT, TINY_RM_LAST_CHANNELS, TINY_RM_NUM_CLASSES, load_tool,
                         tool_env, write_config, write_fashion_mnist)


def test_cuda_sync_check_refuses_without_cuda(tiny_rm, capsys):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA: the refusal path does not apply')
    tool = load_tool('tools/analysis_tools/cuda_sync_check.py')
    assert tool.main([str(tiny_rm['rm_path'])]) == 2
    assert 'needs a CUDA device' in capsys.readouterr().err


def test_cost_report_cli(tiny_rm, tmp_path):
    out = tmp_path / 'cost.json'
    cmd = [sys.executable, str(REPO_ROOT / 'tools/analysis_tools/rm_cost_report.py'),
           tiny_rm['rm_path'], '--shape', '3x16x16', '--batch', '2', '--repeats', '3',
           '--warmup', '1', '--memory-steps', '1', '--threads', '1', '--profile', '2',
           '--json', str(out)]
    proc = subprocess.run(cmd, env=tool_env(), cwd=str(REPO_ROOT), capture_output=True,
                          text=True, timeout=240)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    report = json.loads(out.read_text())
    rows = report['rows']
    base, rm = rows['baseline'], rows['rm']
    # Table 10: deploy params == baseline; H' adds C*K + K while training
    assert rm['params_deploy'] == base['params_train'] == base['params_deploy']
    assert rm['params_train'] == base['params_train'] + TINY_RM_LAST_CHANNELS * TINY_RM_NUM_CLASSES + TINY_RM_NUM_CLASSES
    assert rows['mixup']['params_train'] == rows['cutmix']['params_train'] == \
        base['params_train']
    assert len({r['flops'] for r in rows.values()}) == 1 and base['flops'] > 0
    assert report['deploy_loads_into_baseline'] is True
    for row in rows.values():
        assert row['memory_mb'] is not None and row['memory_mb'] > 0
        assert len(row['step_ms_all']) == 3
        assert row['step_ms'] == pytest.approx(statistics.median(row['step_ms_all']))
    ratios = report['ratios']
    assert ratios['step_ms rm/cutmix'] == pytest.approx(rm['step_ms'] / rows['cutmix']['step_ms'])
    assert ratios['step_ms rm/baseline'] == pytest.approx(rm['step_ms'] / base['step_ms'])
    assert ratios['params_deploy rm/baseline'] == 1.0
    # the printed table: its ratios are the ratios of its printed times (up to rounding)
    printed = {}
    for line in proc.stdout.splitlines():
        m = re.match(r'\| (Baseline|\+ CutMix|\+ RM) \|.*\| ([\d.]+) \|$', line)
        if m:
            printed[m.group(1)] = float(m.group(2))
    assert set(printed) == {'Baseline', '+ CutMix', '+ RM'}
    m = re.search(r'- step_ms rm/cutmix: ([\d.]+)', proc.stdout)
    assert float(m.group(1)) == pytest.approx(printed['+ RM'] / printed['+ CutMix'], rel=2e-3)
    assert 'sibling config' in proc.stdout  # Mixup taken from tiny_mixup.py
    # --profile: per-step operator counts; the RoI pooling (one matrix-vector product with
    # the box's weights, forward once per step; no RoIAlign kernel) and the fused consistency
    # loss are what RM runs and CutMix does not
    prof = report['profiles']
    assert set(prof) == {'rm', 'cutmix'}
    assert prof['rm']['aten::mv']['count'] == 1.0 and 'aten::mv' not in prof['cutmix']
    assert prof['rm']['WeightedKL']['count'] == 1.0
    assert not any('RoIAlign' in op for op in prof['rm'])
    assert prof['rm']['aten::convolution']['count'] == prof['cutmix']['aten::convolution'][
        'count'] > 0
    m = re.search(r'self host time per step: rm ([\d.]+) ms, cutmix ([\d.]+) ms', proc.stdout)
    assert float(m.group(1)) == pytest.approx(
        sum(r['cpu_us'] for r in prof['rm'].values()) / 1e3, abs=1e-3)


def test_cost_report_compile(tiny_rm, capsys):
    """--compile: the compiled twins of baseline, CutMix and RM are timed in the same rounds;
    RM compiles nothing after the warm-up, and the printed ratios are those of the times."""
    tool = load_tool('tools/analysis_tools/rm_cost_report.py')
    torch._dynamo.reset()
    try:
        report = tool.main([str(tiny_rm['rm_path']), '--shape', '3x16x16', '--batch', '2',
                            '--repeats', '3', '--warmup', '0', '--memory', 'none',
                            '--compile', 'eager', '--compile-warmup', '3'])
    finally:
        torch._dynamo.reset()
    out = capsys.readouterr().out
    rows, ratios = report['rows'], report['ratios']
    assert 'compile' not in rows['mixup'] and len(rows['rm']['step_ms_compiled_all']) == 3
    rm = rows['rm']['compile']
    assert rm['frames after step 3'] == rm['recompiles after step 3'] == 0
    assert 0 < rm['graphs'] <= rows['baseline']['compile']['graphs'] + 4
    paired = [a / b for a, b in zip(rows['rm']['step_ms_compiled_all'],
                                    rows['cutmix']['step_ms_compiled_all'])]
    assert ratios['step compiled rm/cutmix (median of per-round ratios)'] == pytest.approx(
        statistics.median(paired))
    m = re.search(r'\| \+ RM \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|', out)
    assert float(m.group(3)) == pytest.approx(
        ratios['step rm compiled/eager (median of per-round ratios)'], abs=1e-4)
    assert int(m.group(4)) == rm['graphs']


def test_vis_recursive_mix(tiny_rm, tmp_path):
    tool = load_tool('tools/visualization/vis_recursive_mix.py')
    out = tmp_path / 'grid.png'
    res = tool.main([tiny_rm['rm_path'], '--iters', '3', '--num', '3', '--with-cut', '--out',
                     str(out), '--cell-size', '2.0', '2.5', '--save-samples',
                     str(tmp_path / 'samples')])
    # 3 step columns + the cut column, 3 rows, 2.0 x 2.5 inch cells at 80 dpi
    assert len(res['columns']) == 4 and res['columns'][-1]['name'].startswith('cut')
    assert Image.open(out).size == (4 * 160, 3 * 200)
    assert len(os.listdir(tmp_path / 'samples')) == 3
    steps = res['steps']
    pasted = 0
    for prev, cur in zip(steps, steps[1:]):
        x1, y1, x2, y2 = cur['box']
        assert cur['scores'].sum(1).allclose(torch.ones(len(cur['scores'])))
        if x2 > x1 and y2 > y1:  # the previous mixed batch, resized into the box
            pasted += 1
            expect = F.interpolate(prev['inputs'], size=(y2 - y1, x2 - x1), mode='nearest')
            assert torch.equal(cur['inputs'][..., y1:y2, x1:x2], expect)
            assert cur['lam'] == pytest.approx((x2 - x1) * (y2 - y1) / 256)
    assert pasted >= 1


def test_effective_classes_cli(tiny_rm, tmp_path):
    tool = load_tool('tools/analysis_tools/effective_classes.py')
    res = tool.main([tiny_rm['rm_path'], '--iters', '4', '--out-dir', str(tmp_path),
                     '--thresholds', '0.4', '1e-4', '0.1'])
    th = res['thresholds']
    assert th == [1e-4, 0.1, 0.4]
    result = res['result']
    assert list(result) == ['baseline', 'mixup', 'cutmix', 'rm']
    assert result['baseline'] == [1., 1., 1.]
    for name in ('mixup', 'cutmix'):  # two images at most
        assert all(1. <= v <= 2. for v in result[name])
    assert result['rm'][0] >= 1.
    for name in result:  # never more classes above a higher threshold
        assert result[name] == sorted(result[name], reverse=True)
    assert Image.open(tmp_path / 'effective_classes.png').size == (400, 272)
    rows = (tmp_path / 'effective_classes.csv').read_text().split()
    assert rows[0] == 'threshold,baseline,mixup,cutmix,rm'
    for line, t in zip(rows[1:], th):
        vals = [float(v) for v in line.split(',')]
        assert vals[0] == pytest.approx(t)
        assert vals[1:] == pytest.approx([result[n][th.index(t)] for n in result], abs=1e-6)
    for name, (x, y) in res['plotted'].items():
        assert x == th and y == pytest.approx(result[name])


def test_vis_cam_compare_cli(tiny_rm, tmp_path):
    cfg = load_config(tiny_rm['rm_path'])
    variants, _ = derive_variants(cfg, tiny_rm['rm_path'])
    base_cfg = copy.deepcopy(tiny_rm['cfg'])
    base_cfg['model'] = variants['baseline']
    base_path = write_config(base_cfg, tmp_path / 'tiny_baseline.py')
    rm = build_model(variants['rm'])
    ckpt = tmp_path / 'rm.pth'
    classes = ['a', 'b', 'c']
    torch.save(dict(meta=dict(dataset_meta=dict(classes=classes)),
                    state_dict=rm.state_dict()), ckpt)
    images = [os.path.join(tiny_rm['data'], f'class_{k}', 'img_000.png') for k in (0, 2)]
    tool = load_tool('tools/visualization/vis_cam_compare.py')
    out = tmp_path / 'cam.png'
    # the RM checkpoint in the RM model and (its roi_head ignored) in the plain model
    res = tool.main([*images, '--configs', tiny_rm['rm_path'], base_path, '--checkpoints',
                     str(ckpt), str(ckpt), '--names', 'RM', 'plain', '--out', str(out),
                     '--cell-size', '2.0'])
    # rows: 2 images; columns: input + 2 models; cells 2.0 x 2.3 inch at 80 dpi
    assert Image.open(out).size == (3 * 160, 2 * 184)
    (rm_col, plain_col) = res['results']
    for (cam_a, k_a, p_a), (cam_b, k_b, p_b) in zip(rm_col, plain_col):
        assert cam_a.shape == (16, 16) and 0 <= cam_a.min() and cam_a.max() <= 1
        assert k_a == k_b and p_a == pytest.approx(p_b) and np.allclose(cam_a, cam_b)
    # a checkpoint without the weights of the model is refused
    torch.save(dict(state_dict={k: v for k, v in rm.state_dict().items()
                                if not k.startswith('head.')}), tmp_path / 'bad.pth')
    with pytest.raises(RuntimeError, match='missing'):
        tool.main([images[0], '--configs', base_path, '--checkpoints',
                   str(tmp_path / 'bad.pth'), '--out', str(tmp_path / 'bad.png')])


def _fake_work_dir(root, name, cfg, accs, stamp='20240101_000000'):
    wd = root / name
    (wd / stamp / 'vis_data').mkdir(parents=True)
    write_config(cfg, wd / 'cfg.py')
    with open(wd / stamp / 'vis_data' / 'scalars.json', 'w') as f:
        for i, acc in enumerate(accs):
            f.write(json.dumps(dict(lr=0.1, loss=1.0, step=i)) + '\n')
            f.write(json.dumps({'accuracy/top1': acc, 'step': i + 1}) + '\n')
    return str(wd)


def test_plot_sweep(tmp_path):
    # best top-1 per run (the max of each list): alpha 0.1 -> 80, 82, 81; alpha 0.5 -> 84, 86
    runs = {0.1: [[70, 80, 75], [82, 60], [81]], 0.5: [[84, 83], [50, 86]]}
    dirs = []
    for alpha, seeds in runs.items():
        for s, accs in enumerate(seeds):
            cfg = dict(model=dict(type='RMClassifier', roi_head=dict(type='RoIConsistencyHead'),
                                  train_cfg=dict(augments=dict(
                                      type='RecursiveMixBatchAugment', alpha=alpha))))
            dirs.append(_fake_work_dir(tmp_path, f'a{alpha}_s{s}', cfg, accs))
    base = _fake_work_dir(tmp_path, 'base', dict(model=dict(type='ImageClassifier')),
                          [70, 75])
    tool = load_tool('tools/analysis_tools/plot_sweep.py')
    out = tmp_path / 'alpha.png'
    res = tool.main([*dirs, '--param', 'alpha', '--out', str(out), '--baseline', base,
                     '--csv', str(tmp_path / 'alpha.csv')])
    expect = {0.1: [20., 18., 19.], 0.5: [16., 14.]}
    assert [s['value'] for s in res['summary']] == [0.1, 0.5]
    for s in res['summary']:
        e = expect[s['value']]
        assert s['n'] == len(e)
        assert s['mean'] == pytest.approx(statistics.mean(e))
        assert s['std'] == pytest.approx(statistics.stdev(e))
    plotted = res['plotted']
    assert plotted['x'] == [0.1, 0.5]
    assert plotted['y'] == pytest.approx([19., 15.])
    assert plotted['std'] == pytest.approx([1., statistics.stdev([16., 14.])])
    assert res['baseline']['mean'] == pytest.approx(25.)
    assert Image.open(out).size == (400, 272)
    assert (tmp_path / 'alpha.csv').read_text().splitlines()[1].startswith('0.1,3,19.0')
    # omega missing from the configs: the RoIConsistencyHead default (0.1) is the value
    res = tool.main([*dirs, '--param', 'omega', '--out', str(tmp_path / 'omega.png')])
    assert [(s['value'], s['n']) for s in res['summary']] == [(0.1, 5)]


def test_train_steps_check_counts_failing_steps(tmp_path, capsys):
    """The PuzzleMix Fashion-MNIST config's seeded steps all pass (a block count per step is
    reported); with a block count that does not divide 28 px every step fails, is counted with
    its message, and the exit status is 1."""
    tool = load_tool('tools/analysis_tools/train_steps_check.py')
    # 3 images a class: one is carved for validation (FashionMNISTSplit), 20 train
    root = write_fashion_mnist(tmp_path / 'fm', n_train=30)
    config = str(REPO_ROOT / 'configs/rm/resnet18-w16_1xb128_fashion-mnist_puzzlemix.py')
    base = [config, '--steps', '4', '--batch-size', '4', '--threads', '1', '--cfg-options',
            f'train_dataloader.dataset.data_root={root}']
    assert tool.main(base) == 0
    out = capsys.readouterr().out
    assert '4 ok, 0 failed of 4 steps (seed 0, batch 4)' in out
    assert len(re.findall(r'step +\d+: ok +\(blocks (?:2|4|7|14)\)', out)) == 4
    assert tool.main(base + ['model.puzzle_mix.block_nums=[3]']) == 1
    out = capsys.readouterr().out
    assert '0 ok, 4 failed of 4 steps' in out
    assert '4x ValueError: PuzzleMix: the image size 28x28 is not a multiple of the block ' \
           'count 3' in out
