"""RecursiveMix through MMEngine's Runner: 2-rank CPU DDP and resume from a checkpoint."""
import subprocess
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmrm  # noqa: F401
from tests.utils import REPO_ROOT, make_image_folder, tiny_cls_config, tool_env, write_config

# A hook that records, per rank, what RM did at each step and what it kept at the end.
PROBE = textwrap.dedent('''
    import os.path as osp
    import torch
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS


    @HOOKS.register_module(force=True)
    class RMProbeHook(Hook):
        def __init__(self):
            self.lams = []

        def _model(self, runner):
            return getattr(runner.model, 'module', runner.model)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.lams.append(self._model(runner).data_preprocessor.rm_augment.last_lam)

        def after_train(self, runner):
            model = self._model(runner)
            torch.save(dict(
                lams=self.lams,
                hist=model.data_preprocessor.rm_augment.history_inputs,
                p_h=model._hist_logits,
                wrapper=type(runner.model).__name__,
                find_unused=getattr(runner.model, 'find_unused_parameters', None),
                state=model.state_dict()),
                osp.join(runner.work_dir, f'probe_rank{get_rank()}.pth'))
''')


def rm_config(data_root, work_dir, max_iters, **kwargs):
    cfg = tiny_cls_config(data_root, work_dir=work_dir, num_classes=2, img_size=32,
                          max_iters=max_iters, **kwargs)
    model = cfg['model']
    model['type'] = 'RMClassifier'
    model['data_preprocessor']['type'] = 'RMDataPreprocessor'
    model['head']['loss'] = dict(type='CrossEntropyLoss', use_soft=True)
    model['roi_head'] = dict(type='RoIConsistencyHead', omega=0.5)
    model['train_cfg'] = dict(augments=dict(type='RecursiveMixBatchAugment', alpha=1.0))
    cfg['custom_imports'] = dict(imports=['mmrm', 'rm_probe'], allow_failed_imports=False)
    cfg['custom_hooks'] = [dict(type='RMProbeHook')]
    return cfg


#: a ViT (patch tokens + class token: the token tap) as a transformer family, mmpretrain's own
#: VisionTransformer and VisionTransformerClsHead at toy size
VIT = dict(backbone=dict(type='VisionTransformer', arch=dict(
    embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), img_size=32,
    patch_size=8, drop_rate=0.), neck=None, head=dict(
        type='VisionTransformerClsHead', num_classes=2, in_channels=32,
        loss=dict(type='CrossEntropyLoss', use_soft=True)))


@pytest.mark.parametrize('arch', ['resnet', 'vit'])
def test_two_rank_cpu_ddp_trains_rm_without_unused_parameters(arch, tmp_path, free_port):
    (tmp_path / 'rm_probe.py').write_text(PROBE)
    data = make_image_folder(tmp_path / 'data', num_classes=2, images_per_class=8, size=32)
    work = tmp_path / 'work'
    cfg = rm_config(data, work, max_iters=5, batch_size=4, val=False)
    if arch == 'vit':
        cfg['model'].update(VIT)
    path = write_config(cfg, tmp_path / 'rm_ddp.py')
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_train.sh'), path, '2'],
                          cwd=REPO_ROOT, env=tool_env([tmp_path], PORT=free_port),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(work / f'probe_rank{r}.pth', weights_only=False) for r in (0, 1))
    for probe in (r0, r1):
        assert probe['wrapper'] == 'MMDistributedDataParallel'
        assert probe['find_unused'] is False
        assert probe['lams'][0] == 0 and max(probe['lams']) > 0
        assert probe['p_h'].shape == (4, 2)
    # the replicas agree on every weight (BN running stats are per rank, as in any DDP run),
    # and each rank kept the history of its own data
    assert r0['state'].keys() == r1['state'].keys()
    weights = [k for k in r0['state'] if 'running_' not in k]
    assert all(torch.equal(r0['state'][k], r1['state'][k]) for k in weights)
    assert not torch.equal(r0['hist'], r1['hist'])
    assert not torch.equal(r0['p_h'], r1['p_h'])


def test_resume_mid_training_continues_with_a_fresh_history(tmp_path):
    import sys
    sys.path.insert(0, str(tmp_path))
    (tmp_path / 'rm_probe.py').write_text(PROBE)
    try:
        data = make_image_folder(tmp_path / 'data', num_classes=2, images_per_class=4, size=32)
        work = tmp_path / 'work'
        cfg = rm_config(data, work, max_iters=3, batch_size=2, checkpoint_interval=3,
                        val=False)
        cfg['model']['train_cfg']['augments']['reset_history'] = 'never'
        # fromfile runs custom_imports (mmrm and the probe), as tools/train.py does
        Runner.from_cfg(Config.fromfile(write_config(cfg, tmp_path / 'a.py'))).train()
        first = torch.load(work / 'probe_rank0.pth', weights_only=False)
        ckpt = torch.load(work / 'iter_3.pth', map_location='cpu')  # weights_only, as default
        assert ckpt['meta']['iter'] == 3
        assert not any('hist' in k for k in ckpt['state_dict'])

        cfg2 = rm_config(data, work, max_iters=6, batch_size=2, checkpoint_interval=3, val=False)
        cfg2.update(resume=True, load_from=str(work / 'iter_3.pth'))
        cfg2['experiment_name'] = 'resumed'
        runner = Runner.from_cfg(Config.fromfile(write_config(cfg2, tmp_path / 'b.py')))
        runner.train()
        assert runner.iter == 6
        resumed = torch.load(work / 'probe_rank0.pth', weights_only=False)
        # three new steps, the first without history (nothing of it was checkpointed)
        assert len(resumed['lams']) == 3 and resumed['lams'][0] == 0
        assert max(first['lams'][1:] + resumed['lams'][1:]) > 0
        final = torch.load(work / 'iter_6.pth', map_location='cpu')
        assert final['meta']['iter'] == 6
        changed = [k for k in ckpt['state_dict'] if k.endswith('conv1.weight')
                   and not torch.equal(ckpt['state_dict'][k], final['state_dict'][k])]
        assert changed, 'resumed training did not update the weights'
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop('rm_probe', None)
