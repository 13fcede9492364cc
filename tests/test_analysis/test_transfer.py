"""The offline downstream chain (mmrm.analysis.transfer, tools/downstream.py) at toy size: a few
canvases, one pretraining epoch on 64 images, two iterations per downstream model; the backbone
each downstream config initialises equals the pretrained checkpoint exactly."""
import json
import math
import re
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.utils import REPO_ROOT, tool_env, write_fashion_mnist

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402

from mmrm.analysis.downstream import check_backbone_init  # noqa: E402
from mmrm.analysis.runs import Run, RunContext  # noqa: E402
from mmrm.analysis.transfer import (DOWNSTREAM_MODELS, TransferChain,  # noqa: E402
                                    markdown_table, pretrain_configs, summarize)
from mmrm.datasets import CanvasOptions, FashionMNISTMissing, write_canvas_dataset  # noqa: E402
from mmrm.utils.stack import StackMissing  # noqa: E402

TOOL = str(REPO_ROOT / 'tools/downstream.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# one epoch on 64 images, no workers
# two epochs: the schedule's cosine phase starts after a one-epoch warm-up
PRETRAIN_OPTIONS = ['train_cfg.max_epochs=2', 'train_dataloader.batch_size=16'] + [
    f'{loader}.{k}' for loader in LOADERS
    for k in ('num_workers=0', 'persistent_workers=False')]
FINETUNE_OPTIONS = dict(
    det=['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
         'test_dataloader.batch_size=2'] + [f'{loader}.{k}' for loader in LOADERS
                                            for k in ('num_workers=0',
                                                      'persistent_workers=False')],
    seg=['train_cfg.max_iters=2', 'train_dataloader.batch_size=2',
         'test_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=2'] + [
             f'{loader}.{k}' for loader in LOADERS
             for k in ('num_workers=0', 'persistent_workers=False')])


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('transfer')
    fmnist = write_fashion_mnist(root / 'fmnist', n_train=64, n_test=20)
    write_canvas_dataset(fmnist, str(root / 'canvas'),
                         CanvasOptions(train_num=4, val_num=2, size=64, seed=1),
                         log=lambda *_: None)
    return dict(root=root, fmnist=fmnist, canvas=str(root / 'canvas'))


def chain(toy, **kw):
    lines = []
    args = dict(methods=['scratch', 'rm'], models=list(DOWNSTREAM_MODELS), seeds=[0],
                data_root=toy['canvas'], fashion_mnist=toy['fmnist'], threads=1, jobs=2,
                pretrain_options=PRETRAIN_OPTIONS, finetune_options=FINETUNE_OPTIONS,
                log=lines.append)
    args.update(kw)
    return TransferChain(str(toy['root'] / 'work'), **args), lines


@pytest.mark.timeout(900)
def test_the_chain_pretrains_converts_finetunes_and_scores_every_model(toy, monkeypatch):
    c, lines = chain(toy, methods=['rm'])
    out = c.run()
    work = toy['root'] / 'work'
    rec = out['pretrain']['rm']
    folder = Path(rec['backbone']).parent  # the run's own folder holds its own backbone
    assert folder.parent == work / 'pretrain' and re.fullmatch(r'rm_seed0-[0-9a-f]{8}',
                                                                folder.name)
    assert json.loads((folder / 'result.json').read_text())['result'] == {
        k: rec[k] for k in ('checkpoint', 'backbone', 'top1')}
    assert re.search(r'/best_accuracy_top1_epoch_[12]\.pth$', rec['checkpoint'])  # the best
    assert isinstance(rec['top1'], float) and 0 <= rec['top1'] <= 100
    bb = torch.load(rec['backbone'], map_location='cpu')['state_dict']
    assert bb and all(k.startswith('backbone.') for k in bb)  # rm2backbone's output
    assert any('loads into all 6 downstream backbones with 0 missing' in x for x in lines)
    assert sorted(r['model'] for r in out['runs']) == sorted(DOWNSTREAM_MODELS)  # longest first
    for r in out['runs']:
        spec = DOWNSTREAM_MODELS[r['model']]
        assert list(r['scores']) == [c for c, _, _ in spec.metrics]
        for value in r['scores'].values():  # a number, whatever an untrained model scores
            assert isinstance(value, float) and math.isfinite(value) and value >= 0
        assert spec.metrics[0][1] in r['metrics'] and r['backbone'] == rec['backbone']
        assert r['train_s'] > 0 and r['test_s'] > 0 and r['wall_s'] >= r['train_s']
    table = (work / 'results.md').read_text()
    assert '| rm |' in table and 'Mask R-CNN mask AP' in table and 'UperNet mIoU' in table
    assert set(json.loads((work / 'results.json').read_text())['summary']) == set(
        DOWNSTREAM_MODELS)
    assert any(x.startswith('[6/6]') and 'ETA 0:00:00' in x for x in lines)
    assert any('eta:' in x for x in lines)  # the runs' own progress lines are echoed

    # scratch: no checkpoint, nothing frozen, the runs of rm found on disk
    c, lines = chain(toy, methods=['scratch', 'rm'], models=['atss'])
    out = c.run()
    scratch = [r for r in out['runs'] if r['method'] == 'scratch'][0]
    assert scratch['backbone'] is None and math.isfinite(scratch['scores']['box AP'])
    log = next((work / 'atss').glob('scratch_seed0-*/attempt-1.log')).read_text()
    assert 'model.backbone.init_cfg=None' in log and 'model.backbone.frozen_stages=-1' in log
    assert any('done before' in x for x in lines)

    # everything finished is found on disk: a rerun starts no subprocess
    def no_subprocess(*a, **k):
        raise AssertionError('a finished step was run again')
    monkeypatch.setattr(Run, 'execute', no_subprocess)
    again, _ = chain(toy, methods=['scratch', 'rm'], models=['atss'])
    assert again.run()['summary'] == out['summary']

    # --report tabulates what is on disk, runs nothing and names what is missing
    part, lines = chain(toy, methods=['scratch', 'rm'], models=['atss', 'gfl'], seeds=[0, 1])
    rep = part.report()
    assert rep['summary']['atss'] == out['summary']['atss'] and set(rep['summary']['gfl']) == {
        'rm'}
    missing = [x for x in lines if x.startswith('[report] not run')]
    assert len(missing) == 1 and 'gfl scratch seed 0' in missing[0] and \
        'atss rm seed 1' in missing[0] and 'atss rm seed 0' not in missing[0]
    assert '| scratch | ' in (work / 'results.md').read_text()


def test_each_downstream_backbone_equals_the_pretrained_weights(tmp_path):
    """Through each offline config's own init_cfg, the backbone's tensors ARE the checkpoint's
    (values, not only keys), and the checks report 0 missing / unexpected / mismatched."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(REPO_ROOT / pretrain_configs()['rm']))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    classifier = MODELS.build(cfg.model)
    for p in classifier.parameters():  # not an initialisation any config would produce
        p.data.uniform_(-1, 1)
    for name, buf in classifier.named_buffers():
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)
    ckpt = tmp_path / 'rm.pth'
    torch.save(dict(state_dict=classifier.state_dict(), meta={}), ckpt)
    converter = REPO_ROOT / 'tools/model_converters/rm2backbone.py'
    backbone = tmp_path / 'backbone.pth'
    subprocess.run([sys.executable, str(converter), str(ckpt), str(backbone)], check=True,
                   env=tool_env(), capture_output=True)
    expected = {k[len('backbone.'):]: v for k, v in torch.load(backbone)['state_dict'].items()}
    for name, spec in DOWNSTREAM_MODELS.items():
        report = check_backbone_init(str(REPO_ROOT / spec.config), checkpoint=str(backbone))
        assert report.ok, (name, str(report))
        got = report.model.backbone.state_dict()
        assert set(got) == set(expected), name
        for key, value in expected.items():
            assert torch.equal(got[key], value), (name, key)


def test_a_checkpoint_that_does_not_fit_is_refused_with_the_key_report(toy, tmp_path):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(REPO_ROOT / pretrain_configs()['baseline']))
    cfg.model.backbone.base_channels = 8  # a narrower sibling: every conv mismatches
    init_default_scope('mmpretrain')
    bad = tmp_path / 'narrow.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), bad)
    c, _ = chain(toy, methods=['baseline'], models=['atss'], pretrained=dict(baseline=str(bad)))
    c.work_dir = str(tmp_path / 'work')
    with pytest.raises(RuntimeError, match='does not fit the backbone') as err:
        c.run()
    # the report names the mismatched keys, the first layers first, with both shapes
    assert "shape mismatch" in str(err.value)
    assert "shape mismatch 95 [('layer1.0.conv1.weight', (8, 16, 3, 3), (16, 16, 3, 3))" in str(err.value)


def test_bad_input_gets_clear_messages(toy, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown pretraining method 'rn'; allowed: "
                                         r'scratch, baseline, .*rm'):
        chain(toy, methods=['rn'])
    with pytest.raises(ValueError, match=r"unknown downstream model 'yolo'; allowed: atss, gfl"):
        chain(toy, models=['yolo'])
    with pytest.raises(ValueError, match='finetune_options: unknown task'):
        chain(toy, finetune_options=dict(cls=[]))
    # detection / segmentation missing: said before any pretraining starts
    c, _ = chain(toy, methods=['rm'])
    c.work_dir = str(tmp_path / 'work')
    with monkeypatch.context() as m:
        m.setitem(sys.modules, 'mmseg', None)
        with pytest.raises(StackMissing, match=r'MMSegmentation \(mmseg\)'):
            c.run()
    assert not (tmp_path / 'work').exists()
    c, _ = chain(toy, data_root=str(tmp_path / 'none'))
    with pytest.raises(FileNotFoundError, match='make canvases'):
        c.run()
    c, _ = chain(toy, methods=['rm'], fashion_mnist=str(tmp_path / 'nofm'))
    c.work_dir = str(tmp_path / 'work')
    with pytest.raises(FashionMNISTMissing, match='run `make data`'):
        c.run()
    env = tool_env()
    proc = subprocess.run([sys.executable, TOOL, '--fashion-mnist', str(tmp_path / 'nofm'),
                           '--data-root', str(tmp_path / 'nocanvas'), '--work-dir',
                           str(tmp_path / 'w')], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and 'run `make data`' in proc.stderr
    proc = subprocess.run([sys.executable, TOOL, '--methods', 'rn', 'rm'], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2 and "unknown pretraining method 'rn'; allowed: scratch, " \
        'baseline' in proc.stderr
    proc = subprocess.run([sys.executable, TOOL, '--models', 'yolo'], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2 and 'allowed: atss, gfl, mask-rcnn, htc, pspnet, upernet' in \
        proc.stderr


def test_summary_and_table_are_the_mean_and_sample_std_over_seeds():
    runs = [dict(model='atss', method='rm', seed=s, scores={'box AP': v}, train_s=10., test_s=2.)
            for s, v in ((0, 20.), (1, 22.), (2, 27.))]
    runs.append(dict(model='atss', method='scratch', seed=0, scores={'box AP': 5.}, train_s=8.,
                     test_s=2.))
    summary = summarize(runs)
    rm = summary['atss']['rm']['box AP']
    assert rm['mean'] == 23.0 and rm['n'] == 3 and rm['values'] == [20., 22., 27.]
    assert rm['std'] == round(((9 + 1 + 16) / 2)**0.5, 2)  # sample std: 3.61
    assert summary['atss']['scratch']['box AP']['std'] == 0.
    table = markdown_table(dict(summary=summary, runs=runs, meta=dict(cpu='X', threads=2, jobs=1)))
    # a cell with fewer seeds than the table says how many
    assert '| rm | 23.00 ± 3.61 |' in table and '| scratch | 5.00 (1 seed) |' in table
    assert '| baseline | 39.40 |' in table  # the paper's ATSS row


@pytest.mark.parametrize('empty_logged', [True, False])
def test_no_detection_kept_scores_ap_zero_and_a_missing_metric_fails(tmp_path, monkeypatch,
                                                                      empty_logged):
    """CocoMetric returns no metric when nothing passes test_cfg's score threshold: AP 0 then,
    but a missing metric without that log line is a broken run."""
    def fake_call(self, cmd, cwd=None):
        wd = self.folder
        if not cmd[1].endswith('test.py'):
            (Path(wd) / 'last_checkpoint').write_text(osp.join(wd, 'epoch_1.pth'))
            return
        Path(cmd[cmd.index('--out') + 1]).write_text('{}')
        Path(self.log).write_text('mmengine - ERROR - coco_metric.py - compute_metrics - 465 - '
                                  'The testing results of the whole dataset is empty.\n'
                                  if empty_logged else 'mmengine - INFO - done\n')
    monkeypatch.setattr(RunContext, 'call', fake_call)
    lines = []
    c = TransferChain(str(tmp_path), methods=['scratch'], models=['mask-rcnn'], seeds=[0],
                      launcher='inline', log=lines.append)
    if not empty_logged:
        with pytest.raises(RuntimeError, match="'coco/bbox_mAP' missing from the evaluator"):
            c.finetune('mask-rcnn', 'scratch', 0, None)
        return
    r = c.finetune('mask-rcnn', 'scratch', 0, None)
    assert r['scores'] == {'box AP': 0.0, 'mask AP': 0.0}
    assert any('no detection kept' in x for x in lines)
