"""The offline downstream chain (mmrm.experiments.transfer, tools/downstream.py) at toy size: a few
canvases, one pretraining epoch on 64 images, two iterations per downstream model; the backbone
each downstream config initialises equals the pretrained checkpoint exactly; scratch keeps the
backbone's default init, scratch-long triples the schedule; the statistics of the table; the
published records regenerate the table bit for bit."""
import json
import math
import re
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.utils import REPO_ROOT, load_tool, tool_env, write_fashion_mnist

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402

from mmrm.analysis.downstream import check_backbone_init  # noqa: E402
from mmrm.experiments import Run, RunContext  # noqa: E402
from mmrm.experiments.transfer import (DOWNSTREAM_MODELS, SCRATCH_METHODS,  # noqa: E402
                                       SCRATCH_OPTIONS, TransferChain, parse_options,
                                    markdown_table,
                                    pretrain_configs, report_records, summarize)
from mmrm.experiments.transfer import (OBJECT_CLASSES, canvas_data_options,  # noqa: E402
                                       derived_metrics, model_scores, object_miou,
                                       paired_difference)
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


def _check_precise_bn_probe(toy, runs, tmp_path):
    """The probe's 'as trained' scores are the chain's own val scores of the ``runs`` (same
    checkpoint, same canvases); after precise BN the model's statistics are recomputed (scratch
    runs: their backbones train their BatchNorms)."""
    folders = {r['model']: next((toy['root'] / 'work' / r['model']).glob('scratch_seed0-*'))
               for r in runs}
    out = tmp_path / 'probe.json'
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/analysis_tools/precise_bn.py'),
                           *map(str, folders.values()), '--data-root', toy['canvas'],
                           '--out', str(out)], env=tool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r['model']: r for r in json.loads(out.read_text())['rows']}
    for r in runs:
        row = rows[r['model']]
        assert row['before'] == r['val_scores'] and row['split'] == 'val'
        assert set(row['after']) == set(r['scores']) and row['bn_layers'] > 0
        assert row['num_samples'] == 4  # one pass over the 4 train canvases
        assert f'| {row["name"]} | {next(iter(row["before"]))} |' in proc.stdout
    bad = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/analysis_tools/precise_bn.py'),
                          str(tmp_path)], env=tool_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and 'no result.json' in bad.stderr


def _check_val_scores_equal_test_tool(toy, out, model_name, tmp_path):
    """``tools/test.py`` on the repository's config with the options the chain's scorer was
    given, on the val canvases (the scorer's second split, its own TestLoop), gives the
    metrics the chain recorded (for a segmentor, not those of the test split: a detector
    this little trained may score 0 on both)."""
    run = next(r for r in out['runs'] if r['model'] == model_name)
    model = DOWNSTREAM_MODELS[model_name]
    folder = next((toy['root'] / 'work' / model_name).glob(f'{run["method"]}_*seed0-*'))
    cmd = next(line[2:].split() for line in (folder / 'attempt-1.log').read_text().splitlines()
               if line.startswith('$ ') and 'mmrm.experiments.transfer.score' in line)
    config, checkpoint = cmd[3], cmd[4]
    common = cmd[cmd.index('--cfg-options') + 1:cmd.index('--test-options')]
    val = cmd[cmd.index('--val-options') + 1:]
    assert config == model.config and val == canvas_data_options(model, toy['canvas'], 'val')
    metrics = tmp_path / f'test_tool_{model_name}.json'
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/test.py'), config, checkpoint,
                           '--work-dir', str(tmp_path / model_name), '--out', str(metrics),
                           '--out-item', 'metrics', '--cfg-options', *common, *val],
                          cwd=REPO_ROOT, env=tool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw = derived_metrics(json.loads(metrics.read_text()))
    assert raw == run['val_metrics']
    assert model.task == 'det' or raw != run['metrics']  # another split, other pixels
    assert model_scores(model, raw, model_name, 'val') == run['val_scores']


@pytest.mark.timeout(1200)
def test_the_chain_pretrains_converts_finetunes_and_scores_every_model(toy, monkeypatch,
                                                                        tmp_path):
    """RM into every model; then scratch (ATSS, PSPNet) beside it, a rerun that runs nothing,
    the report of what is on disk, and the precise-BN probe on the two scratch runs (one chain
    for all: its ~25 tool processes are most of the test's time)."""
    c, lines = chain(toy, methods=['rm'])
    out = out_rm = c.run()
    work = toy['root'] / 'work'
    rec = out['pretrain']['rm_seed0']
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
        # scored on the test canvases for the table, on the val canvases for the record
        assert r['split'] == 'test' and list(r['val_scores']) == list(r['scores'])
        assert r['pretrain_seed'] == 0
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
    c, lines = chain(toy, methods=['scratch', 'rm'], models=['atss', 'pspnet'])
    out = c.run()
    scratch = [r for r in out['runs'] if r['method'] == 'scratch' and r['model'] == 'atss'][0]
    assert scratch['backbone'] is None and math.isfinite(scratch['scores']['box AP'])
    log = next((work / 'atss').glob('scratch_seed0-*/attempt-1.log')).read_text()
    assert 'model.backbone.init_cfg.type=Kaiming' in log and \
        'model.backbone.frozen_stages=-1' in log and 'init_cfg=None' not in log
    assert 'test_dataloader.dataset.data_prefix.img=images/val/' in log  # the val scoring
    assert any('done before' in x for x in lines)

    # everything finished is found on disk: a rerun starts no subprocess
    def no_subprocess(*a, **k):
        raise AssertionError('a finished step was run again')
    monkeypatch.setattr(Run, 'execute', no_subprocess)
    again, _ = chain(toy, methods=['scratch', 'rm'], models=['atss', 'pspnet'])
    assert again.run()['summary'] == out['summary']

    # --report tabulates what is on disk, runs nothing and names what is missing
    part, lines = chain(toy, methods=['scratch', 'rm'], models=['atss', 'gfl'], seeds=[0, 1])
    rep = part.report()
    assert rep['summary']['atss'] == out['summary']['atss'] and set(rep['summary']['gfl']) == {
        'rm'}
    missing = [x for x in lines if x.startswith('[report] not run')]
    assert len(missing) == 1 and 'gfl scratch seed 0' in missing[0] and \
        'atss rm pre 0 seed 1' in missing[0] and 'atss rm pre 0 seed 0' not in missing[0]
    assert '| scratch | ' in (work / 'results.md').read_text()

    # the one-process scorer's second split gives what tools/test.py gives on it
    for model_name in ('mask-rcnn', 'pspnet'):
        _check_val_scores_equal_test_tool(toy, out_rm, model_name, tmp_path)

    # the precise-BN probe rescores the two scratch runs as the chain scored them
    scratch_runs = [r for r in out['runs'] if r['method'] == 'scratch']
    assert sorted(r['model'] for r in scratch_runs) == ['atss', 'pspnet']
    _check_precise_bn_probe(toy, scratch_runs, tmp_path)


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


def test_bad_input_gets_clear_messages(toy, tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match=r"unknown pretraining method 'rn'; allowed: "
                                         r'scratch, scratch-long, baseline, .*rm'):
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
        'scratch-long, baseline' in proc.stderr
    # the other usage errors through the tool's own parser, in this process (exit 2, stderr)
    tool = load_tool('tools/downstream.py')
    for argv, said in ((['--models', 'yolo'], 'allowed: atss, gfl, mask-rcnn, htc, pspnet, '
                        'upernet'),
                       (['--pairing', 'zip'], "argument --pairing: invalid choice: 'zip'"),
                       (['--split', 'val', '--export', str(tmp_path / 'r')],
                        'the published records (--export / --report DIR) make the test table')):
        with pytest.raises(SystemExit) as exit_:
            tool.parse_args(argv)
        stderr = capsys.readouterr().err
        assert exit_.value.code == 2 and said in stderr, stderr


def test_summary_and_table_are_the_mean_and_sample_std_over_seeds():
    runs = [dict(model='atss', method='rm', seed=s, pretrain_seed=0, scores={'box AP': v},
                 train_s=10., test_s=2.) for s, v in ((0, 20.), (1, 22.), (2, 27.))]
    runs.append(dict(model='atss', method='scratch', seed=0, pretrain_seed=None,
                     scores={'box AP': 5.}, train_s=8., test_s=2.))
    summary = summarize(runs)
    rm = summary['atss']['rm']['box AP']
    assert rm['mean'] == 23.0 and rm['n'] == 3 and rm['values'] == [20., 22., 27.]
    assert rm['std'] == round(((9 + 1 + 16) / 2)**0.5, 2)  # sample std: 3.61
    assert summary['atss']['scratch']['box AP']['std'] == 0.
    table = markdown_table(dict(runs=runs))
    # every cell says over how many runs; the rows in the fixed method order
    assert '| rm | 23.00 ± 3.61 (3) |' in table and '| scratch | 5.00 ± 0.00 (1) |' in table
    assert table.index('| scratch |') < table.index('| rm |')
    assert '| baseline | 39.40 |' in table  # the paper's ATSS row
    assert 'Paired differences' not in table  # no cutmix / baseline rows to pair with


def test_time_rows_keep_the_long_schedule_apart():
    """The 1x-schedule runs' mean time in one row, scratch-long's (3x) in its own: a long run
    does not inflate the 1x figure; a model scratch-long did not run is blank there."""
    runs = [dict(model=m, method=method, seed=s, pretrain_seed=None if 'scratch' in method
                 else 0, scores={c: 1.}, wall_s=w) for m, c in (('atss', 'box AP'),
                                                               ('mask-rcnn', 'box AP'))
            for method, w in (('scratch', 60.), ('rm', 120.)) for s in range(2)]
    runs += [dict(model='atss', method='scratch-long', seed=s, pretrain_seed=None,
                  scores={'box AP': 1.}, wall_s=w) for s, w in ((0, 300.), (1, 360.))]
    table = markdown_table(dict(runs=runs))
    assert '| fine-tune + test, mean per run | 0:01:30 | 0:01:30 |' in table
    assert '| scratch-long, mean per run | 0:05:30 |  |' in table
    assert 'scratch-long, mean' not in markdown_table(dict(runs=runs[:-2]))


def test_paired_differences_match_seeds_and_give_the_paired_t_interval():
    """RM - CutMix pairs the run of (pretraining seed p, fine-tuning seed s) with CutMix's of the
    same (p, s); unmatched runs are left out; the interval is mean +- t(0.975, n - 1) sd / sqrt n
    (computed here by hand, in the chain by scipy.stats.ttest_rel)."""
    from scipy import stats
    rm = {(0, 0): 30., (0, 1): 31., (1, 0): 29.5, (1, 1): 33., (2, 0): 40.}  # (2, 0) unmatched
    cm = {(0, 0): 29., (0, 1): 31.5, (1, 0): 28., (1, 1): 30.}
    runs = [dict(model='gfl', method=m, pretrain_seed=p, seed=s, scores={'box AP': v},
                 train_s=1., test_s=1.) for m, table in (('rm', rm), ('cutmix', cm))
            for (p, s), v in table.items()]
    d = paired_difference(runs, 'gfl', 'box AP', 'rm', 'cutmix')
    diffs = [1., -0.5, 1.5, 3.]
    mean, sd = sum(diffs) / 4, (sum((x - 1.25)**2 for x in diffs) / 3)**0.5
    half = stats.t.ppf(0.975, 3) * sd / 4**0.5
    assert d['n'] == 4 and d['mean'] == round(mean, 2)
    assert (d['low'], d['high']) == (round(mean - half, 2), round(mean + half, 2))
    # pairing by (p, s), not by position: shuffling the runs changes nothing
    assert paired_difference(runs[::-1], 'gfl', 'box AP', 'rm', 'cutmix') == d
    table = markdown_table(dict(runs=runs))
    assert f'| rm − cutmix | {mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] (4) |' in table
    assert paired_difference(runs, 'gfl', 'box AP', 'rm', 'baseline') is None
    one = paired_difference(runs[:1] + runs[5:6], 'gfl', 'box AP', 'rm', 'cutmix')
    assert one == dict(n=1, mean=1.0, low=None, high=None, pvalue=None)


def test_val_table_shows_the_val_scores_only():
    """--split val (choices): every cell is a val score, no test score appears; a record
    without val scores is refused by name."""
    runs = [dict(model='atss', method='rm', seed=s, pretrain_seed=0, scores={'box AP': 50. + s},
                 val_scores={'box AP': 20. + s}, train_s=1., test_s=1.) for s in range(3)]
    val = markdown_table(dict(runs=runs), split='val')
    assert val.startswith('VAL canvases') and '| rm | 21.00 ± 1.00 (3) |' in val
    assert '51.00' not in val and 'Every number is a val-canvas score.' in val
    test = markdown_table(dict(runs=runs))
    assert test.startswith('Test canvases') and '| rm | 51.00 ± 1.00 (3) |' in test
    with pytest.raises(RuntimeError, match='atss rm seed 1'):
        markdown_table(dict(runs=[runs[0], dict(runs[1], val_scores={})]), split='val')
    with pytest.raises(ValueError, match='test or val'):
        markdown_table(dict(runs=runs), split='train')


@pytest.mark.parametrize('pairing,expected', [
    ('cross', [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]),
    ('cycle', [(0, 0), (1, 1), (0, 2)])])
def test_pairing_says_which_finetuning_seeds_run_from_which_pretraining(toy, pairing,
                                                                          expected):
    c, _ = chain(toy, methods=['scratch', 'rm'], models=['atss'], seeds=[0, 1, 2],
                 pretrain_seeds=[0, 1], pairing=pairing)
    assert c.plan.pairs_of('rm') == expected
    assert c.plan.pairs_of('scratch') == [(None, 0), (None, 1), (None, 2)]
    backbones = {('scratch', None): None, ('rm', 0): __file__, ('rm', 1): __file__}
    runs = c._finetune_runs(backbones)
    assert [r.name for r in runs] == [
        f'atss {m}' + ('' if p is None else f' pre {p}') + f' seed {s}'
        for seed in (0, 1, 2) for m in ('scratch', 'rm')
        for p, s in c.plan.pairs_of(m) if s == seed]
    # cycle with one fine-tuning seed needs the first pretraining only
    one, _ = chain(toy, methods=['rm'], models=['atss'], seeds=[5], pretrain_seeds=[0, 1],
                   pairing='cycle')
    assert one.plan.pretrainings() == [('rm', 0)]
    with pytest.raises(ValueError, match='pairing must be one of cross, cycle'):
        chain(toy, pairing='zip')


def test_object_miou_leaves_the_background_out():
    """The headline mIoU, by hand on a made-up per-class table: the mean IoU of the 10 object
    classes, background left out, a class neither labelled nor predicted (NaN) skipped."""
    per_class = dict(zip(OBJECT_CLASSES, [80., 60., 70., 50., 40., 90., 30., 85., 75.,
                                          float('nan')]))
    metrics = {'mIoU': 68.5, 'IoU.background': 98.}
    metrics.update({f'IoU.{c}': v for c, v in per_class.items()})
    expected = (80 + 60 + 70 + 50 + 40 + 90 + 30 + 85 + 75) / 9  # 64.44
    assert object_miou(metrics) == pytest.approx(expected)
    out = derived_metrics(metrics)
    assert out['mIoU.objects'] == pytest.approx(expected) and out['mIoU'] == 68.5
    # the 11-class figure mmseg logs differs: the background is in its mean
    assert (expected * 9 + 98) / 10 != pytest.approx(expected)
    assert 'mIoU.objects' not in derived_metrics({'coco/bbox_mAP': 0.3})
    with pytest.raises(KeyError, match='ClassIoUMetric'):
        object_miou({'mIoU': 1., 'IoU.background': 1.})
    seg = DOWNSTREAM_MODELS['pspnet'].metrics
    assert [(c, k) for c, k, _ in seg] == [('mIoU', 'mIoU.objects'), ('mIoU (11 cl.)', 'mIoU')]


def _backbone(cfg, seed):
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    bb = MODELS.build(dict(cfg, type=cfg['type'].split('.')[-1]))
    bb.init_weights()
    return bb


@pytest.mark.parametrize('model', ['atss', 'pspnet'])
def test_scratch_keeps_the_backbone_default_init(model):
    """Only the checkpoint load is removed: the scratch backbone is initialised as its class
    does by default (Kaiming convs, zero-init residual norms), not at PyTorch's default."""
    cfg = Config.fromfile(str(REPO_ROOT / DOWNSTREAM_MODELS[model].config))
    cfg.merge_from_dict(parse_options(SCRATCH_OPTIONS))
    bb = cfg.model.backbone.to_dict()
    assert bb['init_cfg'] == dict(type='Kaiming', layer='Conv2d')
    assert bb['frozen_stages'] == -1 and bb['norm_eval'] is False
    default = {k: v for k, v in bb.items() if k != 'init_cfg'}  # the class's own init_cfg
    scratch, reference = _backbone(bb, 0), _backbone(default, 0)
    for (k, a), (_, b) in zip(scratch.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), k
    w = scratch.layer2[0].conv2.weight  # 32 -> 32, 3x3
    kaiming = (2 / (w.shape[0] * 9))**0.5  # mode fan_out, relu
    torch_default = 1 / (3 * w.shape[1] * 9)**0.5  # kaiming_uniform(a=sqrt(5))
    assert abs(w.std().item() / kaiming - 1) < 0.1
    # what `init_cfg=None` (the old scratch) gave: PyTorch's default, a third of Kaiming's std
    old = _backbone(dict(default, init_cfg=None), 0).layer2[0].conv2.weight
    assert abs(old.std().item() / torch_default - 1) < 0.1
    assert scratch.layer1[0].norm2.weight.abs().sum() == 0  # zero_init_residual, as the class


def test_scratch_long_triples_the_schedule(tmp_path):
    from mmengine.config import Config as C
    c = TransferChain(str(tmp_path), methods=['scratch', 'scratch-long'],
                      models=['atss', 'gfl', 'pspnet', 'upernet'], seeds=[0], launcher='inline')

    def resolved(model, method):
        cfg = C.fromfile(str(REPO_ROOT / DOWNSTREAM_MODELS[model].config))
        cfg.merge_from_dict(parse_options(c.plan.shaping_options(model, method)))
        return cfg
    for model in ('atss', 'gfl'):
        short, long = resolved(model, 'scratch'), resolved(model, 'scratch-long')
        assert (short.train_cfg.max_epochs, long.train_cfg.max_epochs) == (12, 36)
        assert long.train_cfg.val_interval == 36
        warm, step = long.param_scheduler
        assert (warm.by_epoch, warm.end) == (False, 100)  # the warm-up (iterations) is kept
        assert (step.milestones, step.end) == ([24, 33], 36)
        assert long.model.backbone.init_cfg.type == 'Kaiming'  # and it is a scratch run
    for model in ('pspnet', 'upernet'):
        long = resolved(model, 'scratch-long')
        assert long.train_cfg.max_iters == long.train_cfg.val_interval == 3000
        warm, poly = long.param_scheduler  # in the loop's unit (iterations): both scaled
        assert (warm.type, warm.begin, warm.end) == ('LinearLR', 0, 300)
        assert (poly.type, poly.begin, poly.end, poly.power) == ('PolyLR', 300, 3000, 0.9)
        assert long.default_hooks.checkpoint.interval == 3000
        # no pretraining to keep: one lr, the heads' (1e-4 x 100), for every parameter
        assert long.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 1.
        assert long.optim_wrapper.optimizer.lr == pytest.approx(1e-2)
        short = resolved(model, 'scratch')
        assert short.optim_wrapper.optimizer.lr == pytest.approx(1e-2)
        assert resolved(model, 'rm').optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 100.
    # the user's schedule is what is tripled (the toy options of the tests)
    toy = TransferChain(str(tmp_path), methods=['scratch-long'], models=['atss', 'pspnet'],
                        seeds=[0], finetune_options=FINETUNE_OPTIONS, launcher='inline')
    assert 'train_cfg.max_epochs=3' in toy.plan.shaping_options('atss', 'scratch-long')
    seg = toy.plan.shaping_options('pspnet', 'scratch-long')
    assert 'train_cfg.max_iters=6' in seg and 'default_hooks.checkpoint.interval=6' in seg
    assert seg.index('train_cfg.max_iters=2') < seg.index('train_cfg.max_iters=6')  # last wins
    with pytest.raises(ValueError, match="'scratch-long' is not a pretraining method"):
        TransferChain(str(tmp_path), methods=['rm'], models=['atss'], seeds=[0],
                      pretrained={'scratch-long': __file__})


def _fake_tools(monkeypatch):
    """Every tool the chain calls, faked: a pretraining writes a best checkpoint, rm2backbone a
    backbone unique to its run, train.py a last checkpoint, test.py metrics that depend on the
    model, method, pretraining seed, fine-tuning seed and split."""
    import hashlib

    from mmrm.experiments.transfer import pretrain

    def fake_call(self, cmd, cwd=None):
        wd, tool = Path(self.folder), Path(cmd[1]).name
        if tool == 'rm2backbone.py':
            Path(cmd[3]).write_bytes(hashlib.sha256(str(wd).encode()).digest())
        elif tool == 'train.py' and self.run.group == 'pretrain':
            (wd / 'best_accuracy_top1_epoch_1.pth').write_bytes(b'x')
        elif tool == 'train.py':
            (wd / 'last_checkpoint').write_text(str(wd / 'epoch_1.pth'))
        else:  # the scorer: both splits
            metrics = {}
            for split in ('test', 'val'):
                h = int(hashlib.sha256(f'{self.run.name} {split}'.encode()).hexdigest(), 16)
                score = 0.2 + (h % 1000) / 10000 + (0.05 if ' rm ' in self.run.name else 0)
                if 'pspnet' in self.run.name:
                    metrics[split] = {'mIoU': 100 * score, 'aAcc': 90., 'IoU.background': 95.}
                    metrics[split].update({f'IoU.{c}': 100 * score + i for i, c in
                                           enumerate(OBJECT_CLASSES)})
                else:
                    metrics[split] = {'coco/bbox_mAP': score}
            Path(cmd[cmd.index('--out') + 1]).write_text(json.dumps(dict(metrics=metrics,
                                                                         empty=[])))
    monkeypatch.setattr(RunContext, 'call', fake_call)
    monkeypatch.setattr(pretrain, 'best_metric', lambda wd, key: 91.234)
    monkeypatch.setattr(TransferChain, 'check_keys', lambda self, m, b: None)


def test_exported_records_regenerate_the_table_bit_for_bit(toy, tmp_path, monkeypatch):
    _fake_tools(monkeypatch)
    lines = []
    c = TransferChain(str(tmp_path / 'work'), methods=['scratch', 'baseline', 'cutmix', 'rm'],
                      models=['atss', 'pspnet'], seeds=[0, 1, 2], pretrain_seeds=[0, 1],
                      data_root=toy['canvas'], fashion_mnist=toy['fmnist'], launcher='inline',
                      log=lines.append)
    out = c.run()
    assert len(out['runs']) == 2 * 3 * (1 + 3 * 2)
    table = (tmp_path / 'work' / 'results.md').read_bytes()
    text = table.decode()
    assert '| rm − cutmix |' in text and '| rm − baseline |' in text
    assert 'PSPNet mIoU | PSPNet mIoU (11 cl.)' in text
    # the table holds test scores only: no val mean appears in it
    rm = [r for r in out['runs'] if r['model'] == 'atss' and r['method'] == 'rm']
    assert f"{out['summary']['atss']['rm']['box AP']['mean']:.2f}" in text
    val_mean = sum(r['val_scores']['box AP'] for r in rm) / len(rm)
    assert f'{val_mean:.2f} ±' not in text
    assert {(r['pretrain_seed'], r['seed']) for r in rm} == {(p, s) for p in (0, 1)
                                                             for s in (0, 1, 2)}
    assert out['differences']['atss']['box AP']['rm - cutmix']['n'] == 6
    dest = tmp_path / 'results' / 'transfer'
    (dest / 'atss').mkdir(parents=True)
    (dest / 'atss' / 'stale_seed9-00000000.json').write_text(json.dumps(dict(key={}, result={})))
    files = c.export(str(dest))
    assert not (dest / 'atss' / 'stale_seed9-00000000.json').exists()  # not behind the table
    assert len(files) == 42 + 6 and all(Path(f).is_file() for f in files)  # + 6 pretrainings
    record = json.loads(next((dest / 'atss').glob('rm_pre1_seed2-*.json')).read_text())
    assert record['key']['seed'] == 2 and record['result']['pretrain_seed'] == 1
    assert (dest / 'results.md').read_bytes() == table
    (dest / 'results.md').unlink()
    report_records(str(dest), log=lambda *_: None)
    assert (dest / 'results.md').read_bytes() == table
    (dest / 'results.md').unlink()
    proc = subprocess.run([sys.executable, TOOL, '--report', str(dest)], capture_output=True,
                          text=True, env=tool_env())
    assert proc.returncode == 0, proc.stderr
    assert (dest / 'results.md').read_bytes() == table
    # a truncated record is named, not tabulated
    victim = next((dest / 'pspnet').glob('*.json'))
    victim.write_text(victim.read_text()[:100])
    proc = subprocess.run([sys.executable, TOOL, '--report', str(dest)], capture_output=True,
                          text=True, env=tool_env())
    assert proc.returncode != 0 and victim.name in proc.stderr and 'truncated' in proc.stderr


def test_the_scorer_sees_cocometrics_message_when_no_detection_is_kept(toy):
    """mmdet's CocoMetric, given a set with no detection kept, returns no metric and logs the
    line the scorer's handler watches for, through the current MMLogger (the runner's)."""
    import numpy as np
    from mmdet.evaluation import CocoMetric
    from mmengine.logging import MMLogger

    from mmrm.experiments.transfer.score import COCO_EMPTY, _MessageSeen
    logger = MMLogger.get_instance('scorer_watch_test')  # the current instance, as a runner's
    watch = _MessageSeen(COCO_EMPTY)
    logger.addHandler(watch)
    try:
        metric = CocoMetric(ann_file=osp.join(toy['canvas'], 'annotations',
                                              'instances_val.json'), metric='bbox')
        metric.dataset_meta = dict(classes=OBJECT_CLASSES)
        img_id = metric._coco_api.get_img_ids()[0]
        gt = dict(img_id=img_id, width=64, height=64)
        pred = dict(img_id=img_id, bboxes=np.zeros((0, 4), np.float32),
                    scores=np.zeros(0, np.float32), labels=np.zeros(0, np.int64))
        logger.info('coco/bbox_mAP: 0.0')
        assert not watch.seen
        assert metric.compute_metrics([(gt, pred)]) == {}
        assert watch.seen
    finally:
        logger.removeHandler(watch)


@pytest.mark.parametrize('empty_logged', [True, False])
def test_no_detection_kept_scores_ap_zero_and_a_missing_metric_fails(tmp_path, monkeypatch,
                                                                      empty_logged):
    """CocoMetric returns no metric when nothing passes test_cfg's score threshold: AP 0 then,
    but a missing metric without that log line is a broken run."""
    def fake_call(self, cmd, cwd=None):
        wd = self.folder
        if 'mmrm.experiments.transfer.score' not in cmd:
            (Path(wd) / 'last_checkpoint').write_text(osp.join(wd, 'epoch_1.pth'))
            return
        assert cmd.index('--test-options') < cmd.index('--val-options')  # one process, both
        Path(cmd[cmd.index('--out') + 1]).write_text(json.dumps(dict(
            metrics=dict(test={}, val={}), empty=['test', 'val'] if empty_logged else [])))
    monkeypatch.setattr(RunContext, 'call', fake_call)
    lines = []
    c = TransferChain(str(tmp_path), methods=['scratch'], models=['mask-rcnn'], seeds=[0],
                      launcher='inline', log=lines.append)
    if not empty_logged:
        with pytest.raises(RuntimeError, match="'coco/bbox_mAP' missing from the evaluator"):
            c.finetune('mask-rcnn', 'scratch', 0, None)
        return
    r = c.finetune('mask-rcnn', 'scratch', 0, None)
    assert r['scores'] == r['val_scores'] == {'box AP': 0.0, 'mask AP': 0.0}
    assert any('no detection kept on the whole test set' in x for x in lines)
    assert any('no detection kept on the whole val set' in x for x in lines)


def test_readme_transfer_table_is_the_committed_records(tmp_path):
    """The transfer table of docs/en/results/transfer.md is what ``tools/downstream.py
    --report results/transfer`` makes of the committed run records alone; every cell holds
    >= 3 runs (the four methods on the six models; scratch-long on ATSS, GFL, PSPNet, UperNet),
    each pretrained cell from >= 2 pretrainings; every record's key is the key the chain gives that
    run today (same resolved config, shaping options, canvas options and seed), and each
    fine-tuning ran from the backbone of the committed pretraining it names."""
    from dataclasses import asdict

    from mmrm.experiments import config_digest
    from mmrm.experiments.transfer import PRETRAIN_OPTIONS as CHAIN_PRETRAIN_OPTIONS
    from mmrm.experiments.transfer import load_records, records_table
    folder = REPO_ROOT / 'results' / 'transfer'
    finetunes, pretrainings = load_records(str(folder))
    table = records_table(str(folder))
    assert (folder / 'results.md').read_text() == table
    assert table in (REPO_ROOT / 'docs' / 'en' / 'results' / 'transfer.md').read_text()

    runs = {}
    for r in finetunes:
        res = r['result']
        runs.setdefault((res['model'], res['method']), []).append(res)
    cells = [(m, meth) for m in DOWNSTREAM_MODELS
             for meth in ('scratch', 'baseline', 'cutmix', 'rm')]
    cells += [(m, 'scratch-long') for m in ('atss', 'gfl', 'pspnet', 'upernet')]
    for cell in cells:
        assert len(runs.get(cell, [])) >= 3, cell
        if cell[1] not in SCRATCH_METHODS:
            assert len({res['pretrain_seed'] for res in runs[cell]}) >= 2, cell

    chain = TransferChain(str(tmp_path), methods=['scratch', 'scratch-long', 'baseline',
                                                  'cutmix', 'rm'],
                          models=list(DOWNSTREAM_MODELS), seeds=[0])
    backbones = {}
    for r in pretrainings:
        res, key = r['result'], r['key']
        method, seed = re.match(r'pretrain (\S+) seed (\d+)$', r['name']).groups()
        assert key['config'] == config_digest(str(REPO_ROOT / pretrain_configs()[method]))
        assert key['cfg_options'] == list(CHAIN_PRETRAIN_OPTIONS) and key['seed'] == int(seed)
        backbones[(method, int(seed))] = res['backbone']
    canvas = asdict(CanvasOptions())
    for r in finetunes:
        res, key = r['result'], r['key']
        model = DOWNSTREAM_MODELS[res['model']]
        assert key['config'] == config_digest(str(REPO_ROOT / model.config)), r['name']
        assert key['cfg_options'] == chain.plan.shaping_options(res['model'], res['method'])
        assert key['seed'] == res['seed'] and key['data']['canvas']['options'] == canvas
        if res['method'] in SCRATCH_METHODS:
            assert key['checkpoints'] == {} and res['backbone'] is None
        else:
            assert res['backbone'] == backbones[(res['method'], res['pretrain_seed'])]
            assert set(key['checkpoints']) == {'backbone'}


class _BNNet(torch.nn.Module):
    """A model as MMEngine calls it: a data preprocessor and ``forward(inputs, mode)``."""

    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(3, momentum=0.3)
        self.frozen = torch.nn.BatchNorm1d(3).eval()  # in eval mode: its statistics are kept
        self.modes = []

    def data_preprocessor(self, data, training):
        assert training  # crops of different sizes are padded only in training mode
        return data

    def forward(self, inputs, mode):
        self.modes.append(mode)
        return self.frozen(self.bn(inputs))


def test_precise_bn_sets_the_statistics_to_the_mean_of_the_batch_statistics():
    from mmrm.experiments.precise_bn import recompute_bn_stats
    torch.manual_seed(0)
    batches = [dict(inputs=torch.randn(n, 3) * 2 + 5) for n in (4, 4, 2, 4)]
    net = _BNNet().train()
    net.frozen.eval()
    frozen = (net.frozen.running_mean.clone(), net.frozen.running_var.clone())
    # 9 samples asked: batches of 4, 4 and 2 are seen (10 >= 9), the fourth is not
    assert recompute_bn_stats(net, batches, num_samples=9) == 1
    seen = [b['inputs'] for b in batches[:3]]
    means = torch.stack([x.mean(0) for x in seen])
    variances = torch.stack([x.var(0, unbiased=True) for x in seen])
    torch.testing.assert_close(net.bn.running_mean, means.mean(0))
    torch.testing.assert_close(net.bn.running_var, variances.mean(0))
    assert net.bn.momentum == 0.3 and net.modes == ['loss'] * 3
    assert torch.equal(net.frozen.running_mean, frozen[0]) and \
        torch.equal(net.frozen.running_var, frozen[1])
