"""The offline Tables 1 / 6 (``mmrm.experiments.compare``, ``tools/analysis_tools/
compare_fashion_mnist.py``, issue #25):

* every method's config takes the regime's options (subset, batch, epochs, the cosine's T_max,
  val interval, best-on-val checkpoint) and each regime is a whole number of val intervals;
* the paired interval against a hand computation (Student t, 2 degrees of freedom);
* rows, table, selection from records with known accuracies;
* the table and regime selection of docs/en/results/tables.md are the tool's output on the
  committed records, whose keys are today's configs and options;
* end to end on tiny Fashion-MNIST files: the tool trains two methods, scores the last and the
  best-on-val checkpoints on the test split (equal to a Runner.test of those checkpoints),
  exports the records; a second call trains nothing; ``--report`` rebuilds the same table
  from the exported files alone.
"""
import glob
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmrm.experiments import compare
from mmrm.experiments.compare import METHODS, REGIMES, regime_options
from mmrm.experiments.compare_report import (format_selection, format_table, load_records,
                                             paired_interval, summarise)
from mmrm.experiments import config_digest
from tests.utils import REPO_ROOT, load_tool, write_fashion_mnist


def _options_dict(options):
    out = {}
    for item in options:
        k, v = item.split('=', 1)
        out[k] = int(v) if v.isdigit() else {'False': False, 'True': True}.get(v, v)
    return out


@pytest.mark.parametrize('regime', sorted(REGIMES))
def test_regime_options_reach_every_method_config(regime):
    r = REGIMES[regime]
    opts = _options_dict(regime_options(r))
    assert r['max_epochs'] % r['val_interval'] == 0
    for m in METHODS:
        cfg = Config.fromfile(str(REPO_ROOT / m['config']))
        cfg.merge_from_dict(opts)
        assert cfg.train_dataloader.dataset.type == 'FashionMNISTSplit'
        assert cfg.train_dataloader.dataset.split == 'train'
        assert cfg.val_dataloader.dataset.split == 'val'
        assert cfg.test_dataloader.dataset.split == 'test'
        assert cfg.train_dataloader.dataset.train_per_class == r['train_per_class']
        assert cfg.train_dataloader.batch_size == r['batch_size']
        assert cfg.train_cfg.max_epochs == r['max_epochs']
        assert cfg.train_cfg.val_interval == r['val_interval']
        warmup, cosine = cfg.param_scheduler
        assert (warmup.type, warmup.end) == ('LinearLR', 1)
        assert cosine.type == 'CosineAnnealingLR' and cosine.begin == 1
        assert cosine.T_max == r['max_epochs'] - 1, m['name']
        assert cfg.default_hooks.checkpoint.save_best == 'auto'
        assert cfg.default_hooks.checkpoint.interval == r['val_interval']
        assert all(cfg[f'{s}_dataloader'].num_workers == 0 for s in ('train', 'val', 'test'))


def test_the_56px_regime_upsamples_every_split_and_scales_the_crop():
    r = REGIMES['scarce-20-56px']
    opts = _options_dict(regime_options(r))
    # scarce-20's own options come first, unchanged (its records keep their keys)
    assert regime_options(r)[:len(regime_options(REGIMES['scarce-20']))] == \
        regime_options(REGIMES['scarce-20'])
    for m in METHODS:
        cfg = Config.fromfile(str(REPO_ROOT / m['config']))
        cfg.merge_from_dict(opts)
        for split in ('train', 'val', 'test'):
            assert cfg[f'{split}_dataloader'].dataset.image_size == 56, m['name']
        crop = cfg.train_dataloader.dataset.pipeline[0]
        assert (crop.type, crop.crop_size, crop.padding) == ('RandomCrop', 56, 4), m['name']


def test_regime_needs_whole_val_intervals():
    with pytest.raises(ValueError, match='max_epochs 10 is not a multiple of val_interval 4'):
        regime_options(dict(train_per_class=5, batch_size=8, max_epochs=10, val_interval=4))


def test_every_method_config_exists_and_names_are_unique():
    names = [m['name'] for m in METHODS]
    assert len(set(names)) == len(names) == 17
    for m in METHODS:
        assert (REPO_ROOT / m['config']).is_file(), m['config']
    assert {'baseline', 'cutmix', 'rm', 'puzzlemix', 'rm-no-cl'} <= set(names)


def test_paired_interval_by_hand():
    # differences 1, 3, 2: mean 2, sample std 1, t_{0.975, 2} = 4.302653
    mean, lo, hi = paired_interval([10., 12., 14.], [9., 9., 12.])
    half = 4.302652729911275 / math.sqrt(3)
    assert mean == pytest.approx(2.) and lo == pytest.approx(2. - half)
    assert hi == pytest.approx(2. + half)
    assert paired_interval([1.], [2.]) is None


def _record(method, seed, last, best, val_last, val_best=None, epoch=12, wall=120.):
    return dict(name=f'{method} seed {seed}', wall_s=wall, result=dict(
        method=method, seed=seed, regime='scarce-50', test_last=last, test_best=best,
        val_last=val_last, val_best=val_best or val_last, best_epoch=epoch))


def test_rows_table_and_selection_from_records():
    records = [_record('baseline', s, a, a + 0.5, v) for s, a, v in
               ((0, 80., 79.), (1, 81., 80.), (2, 82., 81.))]
    records += [_record('rm', s, a, a, v) for s, a, v in
                ((0, 83., 84.), (1, 83.5, 84.), (2, 82.5, 84.))]
    records += [_record('cutmix', s, a, a, v) for s, a, v in
                ((0, 83., 83.), (1, 83., 83.), (2, 83., 83.))]
    rows = summarise(records)
    assert [r['method'] for r in rows] == ['baseline', 'cutmix', 'rm']  # METHODS order
    base = rows[0]
    assert base['test_last'] == pytest.approx([20., 19., 18.])
    assert base['test_last_mean'] == pytest.approx(19.) and base['test_last_std'] == 1.
    assert base['test_best_mean'] == pytest.approx(18.5)
    # baseline - rm, paired by seed: 20-17, 19-16.5, 18-17.5 = 3, 2.5, 0.5: mean 2, sample
    # std sqrt(3.5 / 2), half width t_{0.975, 2} * std / sqrt(3) = 3.2862
    d = base['vs_ref']
    half = 4.302652729911275 * math.sqrt(1.75) / math.sqrt(3)
    assert d == pytest.approx((2., 2. - half, 2. + half))
    table = format_table(rows)
    assert ('| baseline | crop 28 pad 2, flip | 19.00 ± 1.00 | 18.50 ± 1.00 | '
            '+2.00 [-1.29, +5.29] | 3.85 / 23.68 | 3 | 2.0 |') in table
    assert '| rm | alpha 0.5, omega 0.1, nearest | 17.00 ± 0.50 | 17.00 ± 0.50 | — |' in table
    assert '| stylecutmix | not run:' in table
    # the choice of regime reads val only: baseline 20 +- 1, CutMix 17 +- 0 -> 3.0 stds
    sel = format_selection({'scarce-50': records})
    assert '| scarce-50 | 50 a class, batch 64, 48 epochs | 20.00 ± 1.00 | 17.00 ± 0.00 | ' \
           '3.0 | 3 |' in sel


def test_tool_trains_scores_exports_and_reports(tmp_path, monkeypatch):
    """Two methods x one seed on tiny Fashion-MNIST files, through the tool's main."""
    tool = load_tool('tools/analysis_tools/compare_fashion_mnist.py')
    data = write_fashion_mnist(tmp_path / 'fm', n_train=40, n_test=10)
    # 4 images a class: 1 carved for val, 2 of the other 3 trained on; val every epoch
    monkeypatch.setitem(REGIMES, 'tiny', dict(train_per_class=2, batch_size=4, max_epochs=2,
                                             val_interval=1))
    argv = ['--regime', 'tiny', '--methods', 'baseline', 'rm', '--seeds', '0', '--work-root',
            str(tmp_path / 'wd'), '--data-root', data, '--launcher', 'inline', '--jobs', '1',
            '--export', str(tmp_path / 'results'), '--figure', str(tmp_path / 'fig.png')]
    assert tool.main(argv) == 0
    out = tmp_path / 'results' / 'tiny'
    assert sorted(p.name for p in out.iterdir()) == [
        'baseline_seed0.json', 'rm_seed0.json', 'table.md']
    table = (out / 'table.md').read_text()
    rec = json.loads((out / 'rm_seed0.json').read_text())
    res = rec['result']
    assert (res['method'], res['seed'], res['regime'], res['last_epoch']) == ('rm', 0, 'tiny', 2)
    assert rec['key']['seed'] == 0 and rec['threads'] == 1 and rec['commit']
    assert [e for e, _ in res['val_curve']] == [1, 2]
    assert res['val_best'] == max(v for _, v in res['val_curve'])
    # the recorded test score: the last checkpoint's accuracy on the 10 test images, by hand
    folder, = glob.glob(str(tmp_path / 'wd' / 'tiny' / 'rm_seed0-*'))
    assert res['test_last'] == pytest.approx(_accuracy_by_hand(folder, 'epoch_2.pth', data))
    best = res['best_checkpoint']
    assert best == f'best_accuracy_top1_epoch_{res["best_epoch"]}.pth'
    assert res['test_best'] == pytest.approx(_accuracy_by_hand(folder, best, data))
    assert Image.open(tmp_path / 'fig.png').size[0] > 0
    # finished: nothing trains again (a body that would fail proves it)
    monkeypatch.setattr(compare, '_compare_body', _fail)
    assert tool.main(argv) == 0
    assert (out / 'table.md').read_text() == table
    # the docs' table again from the committed records alone
    (out / 'table.md').unlink()
    assert tool.main(['--regime', 'tiny', '--report', str(tmp_path / 'results'), '--figure',
                      str(tmp_path / 'fig2.png')]) == 0
    assert (out / 'table.md').read_text() == table


def _fail(*args, **kwargs):
    raise AssertionError('a finished run was trained again')


def _accuracy_by_hand(folder, checkpoint, data_root):
    """Top-1 (%) of a checkpoint on the test file, from the model's logits."""
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS

    from mmrm.datasets.fashion_mnist_splits import FashionMNISTSplit
    from mmrm.experiments.work_dirs import work_dir_config
    cfg = Config.fromfile(work_dir_config(osp.join(folder, 'train')))
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, osp.join(folder, 'train', checkpoint), map_location='cpu')
    ds = FashionMNISTSplit(data_root=data_root, split='test', pipeline=[])
    images = torch.stack([torch.as_tensor(ds[i]['img']).float() for i in range(len(ds))])
    labels = torch.as_tensor([int(ds[i]['gt_label']) for i in range(len(ds))])
    x = (images.view(-1, 1, 28, 28) - 72.94) / 90.02
    with torch.no_grad():
        logits = model(x, mode='tensor')
    return float((logits.argmax(1) == labels).float().mean() * 100)


def test_readme_table_is_the_committed_records():
    """The offline Tables 1 / 6 and the regime selection of docs/en/results/tables.md are what
    the tool makes of the committed records (``results/fashion_mnist``), and every record's key
    is the key the tool would give that run today (same resolved config, regime options and
    seed)."""
    root = REPO_ROOT / 'results' / 'fashion_mnist'
    folder = root / compare.DEFAULT_REGIME
    records = load_records(str(folder))
    table_records = [r for r in records if r['result']['seed'] in compare.TABLE_SEEDS]
    assert len(table_records) == len(METHODS) * 3
    table = format_table(summarise(table_records))
    assert (folder / 'table.md').read_text() == table + '\n'
    page = (REPO_ROOT / 'docs' / 'en' / 'results' / 'tables.md').read_text()
    assert table in page
    assert format_selection({r: load_records(str(root / r)) for r in compare.TABLE_REGIMES}) in page
    options = regime_options(REGIMES[compare.DEFAULT_REGIME])
    for r in records:
        method = next(m for m in METHODS if m['name'] == r['result']['method'])
        key = r['key']
        assert key['config'] == config_digest(str(REPO_ROOT / method['config'])), method
        assert key['cfg_options'] == options and key['seed'] == r['result']['seed']


def test_report_refuses_a_folder_with_an_unreadable_record(tmp_path):
    """``--report`` never publishes a table with a cell silently short of a run."""
    import shutil
    folder = tmp_path / 'scarce-20'
    shutil.copytree(REPO_ROOT / 'results/fashion_mnist/scarce-20', folder)
    text = (folder / 'rm_seed1.json').read_text()
    (folder / 'rm_seed1.json').write_text(text[:len(text) // 2])
    tool = load_tool('tools/analysis_tools/compare_fashion_mnist.py')
    with pytest.raises(RuntimeError, match=r'rm_seed1\.json is not a run record \(truncated\?\)'):
        tool.main(['--report', str(tmp_path), '--figure', str(tmp_path / 'f.png')])
    (folder / 'rm_seed1.json').write_text('{"result": {"seed": 1}}')
    with pytest.raises(RuntimeError, match=r'rm_seed1\.json is not a comparison run record'):
        tool.main(['--report', str(tmp_path), '--figure', str(tmp_path / 'f.png')])
