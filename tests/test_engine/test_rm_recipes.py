"""RM inside MMPretrain training recipes, through MMEngine's Runner: SwitchRecipeHook (off, on
again with another alpha, resume after a switch, refused switches at config time), EMAHook
(what evaluates, what is averaged, what the converters take), RepeatAugSampler with the DeiT
pipeline and auto_scale_lr, and a 2-rank gloo job with the switch, EMA and accumulation."""
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmrm  # noqa: F401
from mmrm.engine import check_rm_recipe
from tests.utils import REPO_ROOT, load_tool, make_image_folder, tool_env, write_config
from tests.test_engine.test_rm_ddp_and_resume import rm_config

# Records, per rank and iteration, what RM did; at the end the weights, per rank.
PROBE = textwrap.dedent('''
    import os.path as osp
    import torch
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS


    @HOOKS.register_module(force=True)
    class RecipeProbeHook(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.steps, self.val_weights, self.raw_weights = [], [], []

        def _model(self, runner):
            return getattr(runner.model, 'module', runner.model)

        def before_train(self, runner):
            self.w0 = self._model(runner).head.fc.weight.detach().clone()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            model = self._model(runner)
            aug = model.data_preprocessor.rm_augment
            self.steps.append(dict(
                epoch=runner.epoch + 1, rm_on=aug is not None,
                alpha=None if aug is None else aug.alpha,
                lam=0. if aug is None else aug.last_lam,
                loss=float(outputs['loss'].detach()),
                loss_rm=float(outputs['loss_rm'].detach()),
                idx=[s.sample_idx for s in data_batch['data_samples']],
                lr=runner.optim_wrapper.get_lr()['lr'][0],
                fc=model.head.fc.weight.detach().clone(),
                roi_fc=model.roi_head.fc.weight.detach().clone()))

        def before_val_epoch(self, runner):  # after EMAHook's swap (lower priority)
            self.val_weights.append(self._model(runner).head.fc.weight.detach().clone())

        def after_train(self, runner):
            model = self._model(runner)
            torch.save(dict(steps=self.steps, w0=self.w0, val_weights=self.val_weights,
                            state=model.state_dict(),
                            find_unused=getattr(runner.model, 'find_unused_parameters', None)),
                       osp.join(runner.work_dir, f'recipe_probe_rank{get_rank()}.pth'))
''')

RM_AGAIN = dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.3))


def epoch_config(data, work, max_epochs, batch_size=2, val=False, **kwargs):
    """The RM config of the DDP tests, epoch-based (switches happen at epochs)."""
    cfg = rm_config(data, work, max_iters=1, batch_size=batch_size, val=val, **kwargs)
    cfg['custom_imports'] = dict(imports=['mmrm', 'recipe_probe'], allow_failed_imports=False)
    cfg['train_cfg'] = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
    cfg['train_dataloader']['sampler'] = dict(type='DefaultSampler', shuffle=True)
    cfg['default_hooks']['checkpoint'] = dict(type='CheckpointHook', interval=1, by_epoch=True)
    cfg['param_scheduler'] = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
    cfg['log_processor'] = dict(by_epoch=True)
    cfg['custom_hooks'] = [dict(type='RecipeProbeHook')]
    if val:
        for split in ('val', 'test'):
            cfg[f'{split}_dataloader']['batch_size'] = 8
    return cfg


@pytest.fixture
def probe_path(tmp_path):
    (tmp_path / 'recipe_probe.py').write_text(PROBE)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop('recipe_probe', None)


def train(cfg, path):
    runner = Runner.from_cfg(Config.fromfile(write_config(cfg, path)))
    runner.train()
    return torch.load(f"{cfg['work_dir']}/recipe_probe_rank0.pth", weights_only=False)


def by_epoch(steps):
    out = {}
    for s in steps:
        out.setdefault(s['epoch'], []).append(s)
    return out


def test_switch_recipe_hook_turns_rm_off_and_on_and_a_resume_keeps_the_switched_state(
        probe_path):
    data = make_image_folder(probe_path / 'data', num_classes=2, images_per_class=4, size=32)
    work = probe_path / 'work'
    schedule = [dict(action_epoch=2, batch_augments=None),
                dict(action_epoch=4, batch_augments=RM_AGAIN)]
    cfg = epoch_config(data, work, max_epochs=4)
    cfg['custom_hooks'].insert(0, dict(type='SwitchRecipeHook', schedule=schedule))
    epochs = by_epoch(train(cfg, probe_path / 'a.py')['steps'])
    assert [len(epochs[e]) for e in (1, 2, 3, 4)] == [4] * 4
    assert all(s['rm_on'] and s['alpha'] == 1.0 for s in epochs[1])
    assert max(s['lam'] for s in epochs[1]) > 0
    for s in epochs[2] + epochs[3]:  # plain: no mix, consistency loss exactly 0
        assert not s['rm_on'] and s['lam'] == 0 and s['loss_rm'] == 0
    assert all(s['rm_on'] and s['alpha'] == 0.3 for s in epochs[4])
    assert epochs[4][0]['lam'] == 0 and max(s['lam'] for s in epochs[4]) > 0  # fresh history
    assert all(s['lam'] <= 0.3 for s in epochs[4])

    # resume after the switch: the resumed run starts in the switched (plain) state
    cfg2 = dict(cfg, resume=True, load_from=str(work / 'epoch_2.pth'),
                experiment_name='resumed')
    resumed = by_epoch(train(cfg2, probe_path / 'b.py')['steps'])
    assert sorted(resumed) == [3, 4]
    assert all(not s['rm_on'] and s['loss_rm'] == 0 for s in resumed[3])
    assert all(s['rm_on'] and s['alpha'] == 0.3 for s in resumed[4])


@pytest.mark.parametrize('augments,match,cli', [
    (dict(augments=dict(type='CutMix', alpha=1.0)), r"got \['CutMix'\]", True),
    (dict(augments=dict(type='RecursiveMixBatchAugment'), probs=0.5), 'no probs', False),
    (dict(augments=dict(type='RecursiveMixBatchAugment', alpha=2.0)), r'alpha must be', False),
])
def test_a_switch_rm_cannot_run_is_refused_at_config_time(tmp_path, monkeypatch, augments,
                                                          match, cli):
    data = make_image_folder(tmp_path / 'data', num_classes=2, images_per_class=2, size=32)
    cfg = rm_config(data, tmp_path / 'work', max_iters=2, val=False)
    cfg['custom_hooks'] = [dict(type='SwitchRecipeHook', schedule=[
        dict(action_epoch=3, batch_augments=None), dict(action_epoch=5, batch_augments=augments)])]
    cfg.pop('custom_imports')
    name = r'custom_hooks\[0\]\.schedule\[1\]\.batch_augments \(action_epoch=5\)'
    with pytest.raises(ValueError, match=name + '.*' + match):
        check_rm_recipe(Config(cfg))
    plain = dict(cfg, model=dict(cfg['model'], type='ImageClassifier',
                                 data_preprocessor=dict(cfg['model']['data_preprocessor'],
                                                        type='ClsDataPreprocessor')))
    check_rm_recipe(Config(plain))  # other models: MMPretrain's business
    # tools/train.py refuses it before the Runner is built: its main() in this process for
    # each reason, the command line once (a tool process costs ~10 s of imports)
    path = write_config(cfg, tmp_path / 'bad.py')
    tool = load_tool('tools/train.py')

    def no_runner(_):
        raise AssertionError('a Runner was built for a refused recipe')
    monkeypatch.setattr(tool, 'build_runner', no_runner)
    with pytest.raises(ValueError, match=name + '.*' + match):
        tool.main([path])
    if cli:
        proc = subprocess.run([sys.executable, 'tools/train.py', path], cwd=REPO_ROOT,
                              env=tool_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert 'schedule[1].batch_augments (action_epoch=5)' in proc.stderr
    assert not (tmp_path / 'work').exists() or not list((tmp_path / 'work').rglob('*.pth'))


def test_ema_evaluates_the_averaged_model_averages_the_roi_head_and_converts(probe_path):
    data = make_image_folder(probe_path / 'data', num_classes=2, images_per_class=4, size=32)
    work = probe_path / 'work'
    cfg = epoch_config(data, work, max_epochs=2, val=True)
    m = 0.5
    cfg['custom_hooks'].insert(0, dict(type='EMAHook', momentum=m, priority='ABOVE_NORMAL'))
    probe = train(cfg, probe_path / 'ema.py')
    steps = probe['steps']
    # hand EMA of every iteration's weights: the first update copies, then lerp by momentum
    ema_fc, ema_roi = steps[0]['fc'].clone(), steps[0]['roi_fc'].clone()
    for s in steps[1:4]:
        ema_fc.lerp_(s['fc'], m)
    assert torch.allclose(probe['val_weights'][0], ema_fc, atol=1e-6)  # EMA evaluates
    assert not torch.allclose(probe['val_weights'][0], steps[3]['fc'])
    for s in steps[1:]:
        ema_roi.lerp_(s['roi_fc'], m)
    ckpt = torch.load(work / 'epoch_2.pth', map_location='cpu')
    assert torch.allclose(ckpt['state_dict']['roi_head.fc.weight'], ema_roi, atol=1e-6)
    assert torch.equal(ckpt['ema_state_dict']['module.roi_head.fc.weight'], steps[-1]['roi_fc'])

    rm2cls = load_tool('tools/model_converters/rm2cls.py')
    rm2backbone = load_tool('tools/model_converters/rm2backbone.py')
    for weights, source in (('ema', ckpt['state_dict']), ('raw', {
            k[len('module.'):]: v for k, v in ckpt['ema_state_dict'].items()
            if k.startswith('module.')})):
        out = probe_path / f'cls_{weights}.pth'
        rm2cls.main([str(work / 'epoch_2.pth'), str(out), '--weights', weights])
        got = torch.load(out)['state_dict']
        assert not any(k.startswith('roi_head.') for k in got)
        assert got.keys() == {k for k in source if not k.startswith('roi_head.')}
        assert all(torch.equal(got[k], source[k]) for k in got)
        bb = probe_path / f'bb_{weights}.pth'
        rm2backbone.main([str(work / 'epoch_2.pth'), str(bb), '--weights', weights])
        got = torch.load(bb)['state_dict']
        assert got and all(torch.equal(v, source[k]) for k, v in got.items())
    assert torch.equal(torch.load(probe_path / 'cls_raw.pth')['state_dict']['head.fc.weight'],
                       steps[-1]['fc'])
    assert 'EMA-averaged' in torch.load(probe_path / 'cls_ema.pth')['meta']['mmrm_converted'][
        'weights']


def test_repeat_aug_sampler_deit_pipeline_label_smoothing_and_auto_scale_lr(probe_path):
    data = make_image_folder(probe_path / 'data', num_classes=2, images_per_class=4, size=40)
    cfg = epoch_config(data, probe_path / 'work', max_epochs=2, batch_size=4)
    mean, std = [127.5] * 3, [64.0] * 3
    cfg['train_dataloader']['dataset']['pipeline'] = [  # MMPretrain's DeiT recipe at 32 px
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=32, backend='pillow', interpolation='bicubic'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
             magnitude_level=9, magnitude_std=0.5, hparams=dict(pad_val=[128] * 3,
                                                              interpolation='bicubic')),
        dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
             max_area_ratio=1 / 3, fill_color=mean, fill_std=std),
        dict(type='PackInputs'),
    ]
    cfg['train_dataloader']['sampler'] = dict(type='RepeatAugSampler', num_repeats=3)
    cfg['model']['head']['loss'] = dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                                        mode='original')
    cfg['auto_scale_lr'] = dict(base_batch_size=16, enable=True)
    steps = train(cfg, probe_path / 'deit.py')['steps']
    assert len(steps) == 4  # 8 images a epoch, batch 4
    idx = [i for s in by_epoch(steps)[1] for i in s['idx']]
    assert len(set(idx)) < len(idx)  # RepeatAugSampler: repeated samples within the epoch
    assert all(s['lr'] == pytest.approx(0.1 * 4 / 16) for s in steps)  # lr x batch / base
    assert max(s['lam'] for s in steps) > 0
    assert all(torch.isfinite(torch.tensor([s['loss'], s['loss_rm']])).all() for s in steps)


def test_two_ranks_switch_ema_and_accumulation(probe_path, free_port):
    data = make_image_folder(probe_path / 'data', num_classes=2, images_per_class=8, size=32)
    work = probe_path / 'work'
    cfg = epoch_config(data, work, max_epochs=2)
    cfg['custom_hooks'] = [
        dict(type='SwitchRecipeHook', schedule=[dict(action_epoch=2, batch_augments=None)]),
        dict(type='EMAHook', momentum=0.5, priority='ABOVE_NORMAL'),
        dict(type='RecipeProbeHook')]
    cfg['optim_wrapper'] = dict(cfg['optim_wrapper'], accumulative_counts=2)
    path = write_config(cfg, probe_path / 'ddp.py')
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_train.sh'), path, '2'],
                          cwd=REPO_ROOT, env=tool_env([probe_path], PORT=free_port),
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(work / f'recipe_probe_rank{r}.pth', weights_only=False)
              for r in (0, 1))
    for probe in (r0, r1):
        assert probe['find_unused'] is False
        epochs = by_epoch(probe['steps'])
        assert [len(epochs[1]), len(epochs[2])] == [4, 4]
        assert max(s['lam'] for s in epochs[1]) > 0
        assert all(not s['rm_on'] and s['loss_rm'] == 0 for s in epochs[2])
        # accumulation: weights move only at every second micro-batch
        fcs = [probe['w0']] + [s['fc'] for s in probe['steps']]
        moved = [not torch.equal(a, b) for a, b in zip(fcs, fcs[1:])]
        assert moved == [False, True] * 4
    # every rank holds the same weights after every micro-batch, and the same final EMA
    for a, b in zip(r0['steps'], r1['steps']):
        assert torch.equal(a['fc'], b['fc']) and torch.equal(a['roi_fc'], b['roi_fc'])
    weights = [k for k in r0['state'] if 'running_' not in k and 'num_batches' not in k]
    assert all(torch.equal(r0['state'][k], r1['state'][k]) for k in weights)
    ckpt = torch.load(work / 'epoch_2.pth', map_location='cpu')
    ema = ckpt['state_dict']['roi_head.fc.weight']
    assert not torch.equal(ema, r0['steps'][-1]['roi_fc'])  # averaged, not the last weights
