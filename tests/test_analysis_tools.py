"""The analysis and visualisation tools (paper Table 10, Figs. 1-8) on tiny inputs.

* ``rm_cost_report.py`` (subprocess, as users run it): RM deploy params == baseline params,
  RM train params == baseline + C*K + K, equal FLOPs, a memory figure per variant, and the
  printed ratios are the ratios of the printed times;
* ``vis_recursive_mix.py``: the grid PNG has the expected pixel size for its rows x columns, and
  each step really holds the previous step resized into its box (the recursion it pictures);
* ``effective_classes.py``: hand counts on constructed batches (one-hot -> 1; a fixed RM box
  with known lam), and the CLI's plot and CSV;
* ``vis_cam_compare.py``: plain CAM equals ``fc weights x last feature map``, the PNG layout,
  and a checkpoint that does not fit is refused;
* ``plot_sweep.py``: means / stds of fake work dirs with known accuracies.
"""
import copy
import importlib.util
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

from mmrm.utils import analysis
from mmrm.utils.mix_grid import nested_boxes
from tests.utils import REPO_ROOT, make_image_folder, tiny_cls_config, tool_env, write_config

NUM_CLASSES = 3
BASE = 8  # ResNet-18 base channels -> 64 channels in the last map
LAST_C = BASE * 8


def _load_tool(rel):
    path = REPO_ROOT / rel
    spec = importlib.util.spec_from_file_location(path.stem, str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """The machine is shared: one intra-op thread keeps the small runs fast and steady."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _rm_cfg(data_root, batch_size=4):
    cfg = tiny_cls_config(data_root, num_classes=NUM_CLASSES, batch_size=batch_size,
                          base_channels=BASE, val=True)
    model = cfg['model']
    model['type'] = 'RMClassifier'
    model['data_preprocessor']['type'] = 'RMDataPreprocessor'
    model['head']['loss']['use_soft'] = True
    model['roi_head'] = dict(type='RoIConsistencyHead', omega=0.1)
    model['train_cfg'] = dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5))
    return cfg


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny image folder, an RM config ``tiny_rm.py`` and its sibling ``tiny_mixup.py``
    (Mixup alpha 0.4; no CutMix sibling, so CutMix falls back to alpha 1)."""
    root = tmp_path_factory.mktemp('analysis')
    data = make_image_folder(root / 'data', num_classes=NUM_CLASSES, images_per_class=4,
                             size=16)
    cfg = _rm_cfg(data)
    rm_path = write_config(cfg, root / 'tiny_rm.py')
    mix = copy.deepcopy(cfg)
    mix['model'].update(type='ImageClassifier', train_cfg=dict(
        augments=dict(type='Mixup', alpha=0.4)))
    mix['model'].pop('roi_head')
    mix['model']['data_preprocessor']['type'] = 'ClsDataPreprocessor'
    write_config(mix, root / 'tiny_mixup.py')
    return dict(root=root, data=data, cfg=cfg, rm_path=rm_path)


def test_shape_type_reads_and_refuses_shapes():
    import argparse
    chw = analysis.shape_type('CxHxW')
    assert chw('3x224x160') == (3, 224, 160)
    for bad in ('3x224', '3x224x0', 'axbxc', '64x3x32x32'):
        with pytest.raises(argparse.ArgumentTypeError, match='shape must be CxHxW'):
            chw(bad)
    assert analysis.shape_type('NxCxHxW')('64x3x32x32') == (64, 3, 32, 32)


# ---------------------------------------------------------------------------- CUDA syncs
def _fake_sync(filename, lineno):
    import warnings
    warnings.warn_explicit('called a synchronizing CUDA operation', UserWarning, filename,
                           lineno)


def test_record_syncs_counts_by_site_and_passes_other_warnings_on(monkeypatch):
    from mmrm.utils import cuda_sync
    mmrm_file = os.path.join(cuda_sync._MMRM_ROOT, 'models', 'heads', 'x.py')
    lib_file = '/venv/lib/python3.11/site-packages/mmpretrain/models/utils/y.py'

    def fn():
        _fake_sync(mmrm_file, 7)
        _fake_sync(lib_file, 3)
        _fake_sync(lib_file, 3)
        import warnings
        warnings.warn('unrelated warning')

    with pytest.warns(UserWarning, match='unrelated warning'):
        sites = cuda_sync.record_syncs(fn, repeats=2)
    assert dict(sites) == {'mmrm/models/heads/x.py:7': 2, 'mmpretrain/models/utils/y.py:3': 4}
    # a package imported from a PYTHONPATH folder is named from its import root too
    monkeypatch.syspath_prepend('/opt/extra_site')
    assert cuda_sync.short_site('/opt/extra_site/mmcv/ops/z.py', 5) == 'mmcv/ops/z.py:5'
    assert cuda_sync.is_mmrm_site('mmrm/models/heads/x.py:7')
    assert not cuda_sync.is_mmrm_site('mmpretrain/models/utils/y.py:3')


def test_train_step_syncs_counts_only_the_counted_steps():
    from mmrm.utils import cuda_sync
    calls = []

    class Fake:
        def __init__(self, site):
            self.site = site

        def train_step(self, data, optim):
            calls.append(data)
            _fake_sync(*self.site)

    models = dict(baseline=Fake(('/x/site-packages/mmpretrain/p.py', 1)),
                  rm=Fake((os.path.join(cuda_sync._MMRM_ROOT, 'models', 'r.py'), 2)))
    batches = iter(range(100))
    out = cuda_sync.train_step_syncs(models, dict(baseline=None, rm=None),
                                     lambda: next(batches), steps=3, warmup=2)
    assert len(calls) == 10 and calls[:5] == [0, 1, 2, 3, 4]  # warm-ups, then the 3 counted
    assert out['baseline'] == dict(per_step=1.0, in_mmrm=0, sites={'mmpretrain/p.py:1': 3})
    assert out['rm'] == dict(per_step=1.0, in_mmrm=3, sites={'mmrm/models/r.py:2': 3})


def test_cuda_sync_check_refuses_without_cuda(tiny, capsys):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA: the refusal path does not apply')
    tool = _load_tool('tools/analysis_tools/cuda_sync_check.py')
    assert tool.main([str(tiny['rm_path'])]) == 2
    assert 'needs a CUDA device' in capsys.readouterr().err


# ---------------------------------------------------------------------------- cost report
def test_derive_variants(tiny):
    cfg = analysis.load_config(tiny['rm_path'])
    variants, sources = analysis.derive_variants(cfg, tiny['rm_path'])
    assert list(variants) == ['baseline', 'mixup', 'cutmix', 'rm']
    base = variants['baseline']
    assert base['type'] == 'ImageClassifier' and 'roi_head' not in base
    assert not (base.get('train_cfg') or {}).get('augments')
    assert base['data_preprocessor'].get('type') in (None, 'ClsDataPreprocessor')
    assert base['head']['loss']['use_soft'] is False
    assert variants['mixup']['train_cfg']['augments'] == dict(type='Mixup', alpha=0.4)
    assert sources['mixup'][0] == 'sibling config'
    assert variants['cutmix']['train_cfg']['augments'] == dict(type='CutMix', alpha=1.0)
    assert sources['cutmix'][0] == 'default'
    assert variants['rm']['type'] == 'RMClassifier'
    for name in ('mixup', 'cutmix', 'rm'):
        assert variants[name]['head']['loss']['use_soft'] is True
    # every variant builds and shares the network: same backbone / head shapes
    models = {k: analysis.build_model(v) for k, v in variants.items()}
    n = analysis.count_params(models['baseline'])
    assert all(analysis.count_params(models[k]) == n for k in ('mixup', 'cutmix'))
    # shared H' adds no parameter at all
    shared = copy.deepcopy(variants['rm'])
    shared['roi_head']['share_fc'] = True
    assert analysis.count_params(analysis.build_model(shared)) == n


def test_cost_report_cli(tiny, tmp_path):
    out = tmp_path / 'cost.json'
    cmd = [sys.executable, str(REPO_ROOT / 'tools/analysis_tools/rm_cost_report.py'),
           tiny['rm_path'], '--shape', '3x16x16', '--batch', '2', '--repeats', '3',
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
    assert rm['params_train'] == base['params_train'] + LAST_C * NUM_CLASSES + NUM_CLASSES
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
    # --profile: per-step operator counts; the RoI pooling (forward + backward once per step)
    # is what RM runs and CutMix does not
    prof = report['profiles']
    assert set(prof) == {'rm', 'cutmix'}
    assert prof['rm']['RoIAlignFunction']['count'] == 1.0
    assert prof['rm']['RoIAlignFunctionBackward']['count'] == 1.0
    assert 'RoIAlignFunction' not in prof['cutmix']
    assert prof['rm']['aten::convolution']['count'] == prof['cutmix']['aten::convolution'][
        'count'] > 0
    m = re.search(r'self host time per step: rm ([\d.]+) ms, cutmix ([\d.]+) ms', proc.stdout)
    assert float(m.group(1)) == pytest.approx(
        sum(r['cpu_us'] for r in prof['rm'].values()) / 1e3, abs=1e-3)


# ---------------------------------------------------------------------------- mix grid
def test_nested_boxes_by_hand():
    # step 2 pasted step 1 into the right half; step 3 pasted step 2 into the top-left quarter
    boxes = [None, (8, 0, 16, 16), (0, 0, 8, 8)]
    assert nested_boxes(boxes, (16, 16)) == [(0, 0, 8, 8), (4., 0., 8., 8.)]
    assert nested_boxes([(0, 0, 0, 0), (2, 2, 6, 6)], (16, 16)) == [(2, 2, 6, 6)]


def test_vis_recursive_mix(tiny, tmp_path):
    tool = _load_tool('tools/visualization/vis_recursive_mix.py')
    out = tmp_path / 'grid.png'
    res = tool.main([tiny['rm_path'], '--iters', '3', '--num', '3', '--with-cut', '--out',
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


# ---------------------------------------------------------------------------- Fig. 8
def _hand_batches(labels_per_step, size=8):
    from mmpretrain.structures import DataSample
    out = []
    for labels in labels_per_step:
        out.append(dict(inputs=torch.zeros(len(labels), 3, size, size, dtype=torch.uint8),
                        data_samples=[DataSample().set_gt_label(v) for v in labels]))
    return out


def test_effective_classes_hand_count(monkeypatch):
    from mmpretrain.models.utils import ClsDataPreprocessor

    from mmrm.models import RecursiveMixBatchAugment
    onehot = F.one_hot(torch.tensor([0, 2, 1]), 3).float()
    assert analysis.count_effective_classes(onehot, [1e-4, 0.5, 0.99]).tolist() == [[1] * 3] * 3

    # a fixed RM box of 4x4 on 8x8: lam = 0.25 at every step
    pre_rm = ClsDataPreprocessor(num_classes=3, batch_augments=dict(
        augments=dict(type='RecursiveMixBatchAugment')))
    aug = pre_rm.batch_augments.augments[0]
    assert isinstance(aug, RecursiveMixBatchAugment)
    monkeypatch.setattr(aug, 'sample_box', lambda h, w: (0, 0, 4, 4))
    pre_base = ClsDataPreprocessor(num_classes=3, to_onehot=True)
    thresholds = [0.05, 0.2, 0.5]
    # step 1 one-hot (no history): [1, 1, 1]; step 2: 0.25 / 0.75 -> [2, 2, 1];
    # step 3: 0.0625 / 0.1875 / 0.75 -> [3, 1, 1]
    batches = _hand_batches([[0, 0], [1, 1], [2, 2]])
    res = analysis.effective_classes(dict(baseline=pre_base, rm=pre_rm), batches, 3,
                                     thresholds)
    assert res['baseline'] == [1., 1., 1.]
    assert res['rm'] == pytest.approx([2., 4. / 3., 1.])


def test_effective_classes_cli(tiny, tmp_path):
    tool = _load_tool('tools/analysis_tools/effective_classes.py')
    res = tool.main([tiny['rm_path'], '--iters', '4', '--out-dir', str(tmp_path),
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


# ---------------------------------------------------------------------------- Figs. 6-7
def test_cam_equals_fc_weights_times_feature_map(tiny):
    cfg = analysis.load_config(tiny['rm_path'])
    model = analysis.build_model(analysis.model_config(cfg)).eval()
    x = torch.randn(2, 3, 96, 96)  # a 3x3 last map
    cams, cls, probs = analysis.class_activation_maps(model, x, target=[1, 2])
    fmap = model.backbone(x)[-1]
    assert fmap.shape[-2:] == (3, 3)
    w = model.head.fc.weight
    for i, k in enumerate([1, 2]):
        raw = (w[k].view(-1, 1, 1) * fmap[i]).sum(0)
        up = F.interpolate(raw[None, None], size=(96, 96), mode='bilinear')[0, 0]
        expect = (up - up.min()) / (up.max() - up.min())
        assert torch.allclose(cams[i], expect.detach(), atol=1e-5)
    assert cls == [1, 2]
    # default target: the prediction of the plain inference path
    _, pred, p = analysis.class_activation_maps(model, x)
    logits = model(x, mode='tensor')
    assert pred == logits.argmax(1).tolist()
    assert p == pytest.approx(logits.softmax(1).max(1)[0].tolist(), abs=1e-5)


def test_vis_cam_compare_cli(tiny, tmp_path):
    cfg = analysis.load_config(tiny['rm_path'])
    variants, _ = analysis.derive_variants(cfg, tiny['rm_path'])
    base_cfg = copy.deepcopy(tiny['cfg'])
    base_cfg['model'] = variants['baseline']
    base_path = write_config(base_cfg, tmp_path / 'tiny_baseline.py')
    rm = analysis.build_model(variants['rm'])
    ckpt = tmp_path / 'rm.pth'
    classes = ['a', 'b', 'c']
    torch.save(dict(meta=dict(dataset_meta=dict(classes=classes)),
                    state_dict=rm.state_dict()), ckpt)
    images = [os.path.join(tiny['data'], f'class_{k}', 'img_000.png') for k in (0, 2)]
    tool = _load_tool('tools/visualization/vis_cam_compare.py')
    out = tmp_path / 'cam.png'
    # the RM checkpoint in the RM model and (its roi_head ignored) in the plain model
    res = tool.main([*images, '--configs', tiny['rm_path'], base_path, '--checkpoints',
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


# ---------------------------------------------------------------------------- Figs. 4-5
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
    tool = _load_tool('tools/analysis_tools/plot_sweep.py')
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


def test_compare_fashion_mnist_summary(tmp_path):
    """The offline comparison's table and plot from finished runs (fake accuracies)."""
    tool = _load_tool('tools/analysis_tools/compare_fashion_mnist.py')
    accs = {'cutmix': [90.0, 91.0, 92.0], 'rm': [92.5, 92.5]}
    for method, values in accs.items():
        for seed, acc in enumerate(values):
            wd = tmp_path / f'{method}_seed{seed}'
            wd.mkdir()
            (wd / tool.DONE).write_text(json.dumps(dict(method=method, seed=seed, top1=acc,
                                                        wall_s=60.)))
    out = tmp_path / 'cmp.png'
    rows = tool.main(['--summary-only', '--work-root', str(tmp_path), '--out', str(out),
                      '--seeds', '0', '1', '2'])
    by = {r['method']: r for r in rows}
    assert set(by) == {'cutmix', 'rm'}
    assert by['cutmix']['mean'] == pytest.approx(9.0) and by['cutmix']['std'] == pytest.approx(1.0)
    assert by['rm']['errors'] == [7.5, 7.5] and by['rm']['std'] == 0
    table = (tmp_path / 'results.md').read_text()
    assert '| cutmix | 9.00 ± 1.00 | 10.00, 9.00, 8.00 | 1.0 |' in table
    assert Image.open(out).size == (450, 288)


def test_compare_fashion_mnist_runs_every_method_and_seed(tmp_path, monkeypatch):
    """The runner trains (method x seed) with tools/train.py, the RM-only options reach only
    the RM runs, concurrent runs (--jobs) log to one file each, finished runs are skipped."""
    tool = _load_tool('tools/analysis_tools/compare_fashion_mnist.py')
    calls = []

    def fake_run(cmd, check, cwd, **kw):
        calls.append((cmd, kw))
        wd = cmd[cmd.index('--work-dir') + 1]
        os.makedirs(wd, exist_ok=True)

    accs = dict(baseline=90.0, mixup=89.0, cutmix=91.0, rm=92.0)
    monkeypatch.setattr(tool.subprocess, 'run', fake_run)
    monkeypatch.setattr(tool, 'best_metric',
                        lambda wd: accs[os.path.basename(wd).split('_seed')[0]])
    argv = ['--seeds', '0', '1', '--jobs', '3', '--work-root', str(tmp_path), '--out',
            str(tmp_path / 'c.png'), '--cfg-options', 'train_cfg.max_epochs=2',
            '--rm-cfg-options', 'model.roi_head.roi_backend=torchvision']
    rows = tool.main(argv)
    assert len(calls) == 8
    runs = {(os.path.basename(c[c.index('--work-dir') + 1])) for c, _ in calls}
    assert runs == {f'{m}_seed{s}' for m in accs for s in (0, 1)}
    for cmd, kw in calls:
        assert cmd[1].endswith('tools/train.py') and 'train_cfg.max_epochs=2' in cmd
        is_rm = os.path.basename(cmd[2]) == 'resnet18-w16_1xb128_fashion-mnist_rm.py'
        assert ('model.roi_head.roi_backend=torchvision' in cmd) == is_rm
        seed = int(cmd[cmd.index('--work-dir') + 1][-1])
        assert f'randomness.seed={seed}' in cmd
        assert kw['stdout'].name.endswith(f'_seed{seed}.log')
    assert {r['method']: r['mean'] for r in rows} == pytest.approx(
        {m: 100 - a for m, a in accs.items()})
    calls.clear()
    tool.main(argv)  # everything finished: nothing is trained again
    assert calls == []
