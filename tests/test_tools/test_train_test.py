"""tools/train.py, tools/test.py and tools/dist_*.sh on CPU, as users run them (subprocesses).

* 2-process ``dist_train.sh`` (gloo on CPU): both ranks end with identical parameters that
  differ from the initial ones, although every rank drew a different initialisation
  (``diff_rank_seed``) and saw different images.
* ``train.py --amp`` (bfloat16 on CPU) for 2 iterations, then ``--resume`` to 4: the run starts
  at iteration 3 and the last checkpoint says iteration 4.
* ``dist_test.sh`` (2 processes) on that checkpoint: metrics printed, ``--out`` pickle holds one
  prediction per test image.
* a missing, empty, truncated, foreign (a text file, a pickle of something else) or refused
  checkpoint given to ``train.py --resume``, ``test.py`` or ``load_from``: one message naming
  the file and what is wrong, no traceback.
"""
import inspect
import os
import pickle
import re
import subprocess
import sys
import textwrap

import pytest
import torch

import mmrm  # noqa: F401  (safe globals for torch.load of the checkpoints)
from tests.test_engine.test_checkpoint import UNUSABLE, unusable_checkpoint
from tests.utils import (REPO_ROOT, find_free_port, tiny_cls_config, tool_env,
                         write_config)

TOOLS = REPO_ROOT / 'tools'

HOOK_SRC = textwrap.dedent('''\
    """Dumps every rank's parameters before and after training (test helper)."""
    import os
    import torch
    import torch.distributed as dist
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmengine.registry import HOOKS


    @HOOKS.register_module()
    class RankDumpHook(Hook):

        def _dump(self, runner, tag):
            model = runner.model
            wrapper = type(model).__name__
            if is_model_wrapper(model):
                model = model.module
            torch.save(
                dict(params={k: v.detach().clone()
                             for k, v in model.named_parameters()},
                     rank=runner.rank, world_size=runner.world_size,
                     backend=dist.get_backend() if dist.is_initialized() else None,
                     wrapper=wrapper, iter=runner.iter),
                os.path.join(runner.work_dir, f'{tag}_rank{runner.rank}.pth'))

        def before_train(self, runner):
            self._dump(runner, 'init')

        def after_train(self, runner):
            self._dump(runner, 'final')
    ''')


def _run(cmd, env, cwd, timeout=240):
    proc = subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd} failed:\n{out[-6000:]}'
    return out


@pytest.fixture(scope='module')
def hook_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('hookmod')
    (d / 'rank_dump_hook.py').write_text(HOOK_SRC)
    return d


def test_dist_train_two_cpu_ranks(tiny_image_folder, hook_dir, tmp_path):
    work = tmp_path / 'work'
    cfg = tiny_cls_config(tiny_image_folder, max_iters=4, batch_size=2)
    cfg['custom_imports']['imports'].append('rank_dump_hook')
    cfg['custom_hooks'] = [dict(type='RankDumpHook')]
    cfg['randomness'] = dict(seed=0, diff_rank_seed=True)
    cfg_path = write_config(cfg, tmp_path / 'tiny_dist.py')
    env = tool_env([hook_dir], PORT=find_free_port())
    out = _run(['bash', str(TOOLS / 'dist_train.sh'), cfg_path, '2',
                '--work-dir', str(work)], env, tmp_path)

    dumps = {(tag, r): torch.load(work / f'{tag}_rank{r}.pth')
             for tag in ('init', 'final') for r in (0, 1)}
    for (tag, r), d in dumps.items():
        assert d['rank'] == r and d['world_size'] == 2, (tag, r)
        assert d['backend'] == 'gloo'
        assert d['wrapper'] == 'MMDistributedDataParallel'
    assert dumps['final', 0]['iter'] == dumps['final', 1]['iter'] == 4
    p = {k: v['params'] for k, v in dumps.items()}
    names = list(p['final', 0])
    assert names and names == list(p['final', 1])
    for n in names:
        # DDP broadcast rank 0's weights at wrap time and averaged every gradient
        assert torch.equal(p['init', 0][n], p['init', 1][n]), n
        assert torch.equal(p['final', 0][n], p['final', 1][n]), n
    changed = [n for n in names if not torch.equal(p['init', 0][n], p['final', 0][n])]
    assert len(changed) == len(names), f'unchanged: {set(names) - set(changed)}'
    # the checkpoint written by rank 0 holds the same weights
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    for n in names:
        assert torch.equal(ckpt['state_dict'][n], p['final', 0][n]), n
    assert 'Iter(train) [4/4]' in out


@pytest.fixture(scope='module')
def resumed_run(tiny_image_folder, tmp_path_factory):
    """train.py --amp for 2 iterations, then --resume (auto) to 4 iterations."""
    tmp = tmp_path_factory.mktemp('resume')
    work = tmp / 'work'
    # img_size 32, not 16: torch's CPU bfloat16 conv backward returns non-finite weight
    # gradients (uninitialised memory) for a stride-2 conv on a 1x1 input, which the
    # ResNet's last stage sees at 16x16; the loss scaler then skips those steps.
    cfg = tiny_cls_config(tiny_image_folder, max_iters=2, checkpoint_interval=2,
                          img_size=32)
    cfg_path = write_config(cfg, tmp / 'tiny.py')
    env = tool_env()
    py = sys.executable
    first = _run([py, str(TOOLS / 'train.py'), cfg_path, '--work-dir', str(work), '--amp'],
                 env, tmp)
    second = _run([py, str(TOOLS / 'train.py'), cfg_path, '--work-dir', str(work), '--amp',
                   '--resume', '--cfg-options', 'train_cfg.max_iters=4',
                   'train_cfg.val_interval=4'], env, tmp)
    return dict(tmp=tmp, work=work, cfg_path=cfg_path, first=first, second=second,
                env=env)


def test_train_amp_then_resume(resumed_run):
    first, second, work = resumed_run['first'], resumed_run['second'], resumed_run['work']
    assert 'Iter(train) [2/2]' in first
    assert 'CPUAmpOptimWrapper' in first  # --amp without CUDA
    ck2 = torch.load(work / 'iter_2.pth', map_location='cpu')
    assert ck2['meta']['iter'] == 2
    assert 'loss_scaler' in ck2['optimizer']

    assert re.search(r'resumed epoch: \d+, iter: 2', second), second[-3000:]
    assert 'Iter(train) [3/4]' in second and 'Iter(train) [4/4]' in second
    assert 'Iter(train) [1/4]' not in second and 'Iter(train) [2/4]' not in second
    ck4 = torch.load(work / 'iter_4.pth', map_location='cpu')
    assert ck4['meta']['iter'] == 4
    assert ck4['message_hub']['runtime_info']['max_iters'] == 4
    # the weights moved on after the resume
    assert any(not torch.equal(ck2['state_dict'][k], ck4['state_dict'][k])
               for k in ck4['state_dict'] if k.endswith('weight'))


def test_dist_test_metrics_and_out(resumed_run, tiny_image_folder):
    tmp = resumed_run['tmp']
    out_pkl = tmp / 'preds.pkl'
    env = dict(resumed_run['env'], PORT=str(find_free_port()))
    out = _run(['bash', str(TOOLS / 'dist_test.sh'), resumed_run['cfg_path'],
                str(resumed_run['work'] / 'iter_4.pth'), '2', '--work-dir',
                str(tmp / 'test_work'), '--out', str(out_pkl)], env, tmp)
    m = re.search(r'accuracy/top1: ([0-9.]+)', out)
    assert m, out[-3000:]
    assert 0.0 <= float(m.group(1)) <= 100.0
    with open(out_pkl, 'rb') as f:
        preds = pickle.load(f)
    n_images = sum(len(files) for _, _, files in os.walk(tiny_image_folder))
    assert len(preds) == n_images == 8
    assert {'pred_score', 'pred_label', 'gt_label'} <= set(preds[0])
    paths = {p['img_path'] for p in preds}
    assert len(paths) == n_images, 'each test image exactly once across the ranks'
    assert 'Distributed training: True' in out and 'GPU number: 2' in out


def _load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'mmrm_tool_{name}', TOOLS / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_test_tool_metrics_out_and_tta_in_process(resumed_run, tmp_path):
    """tools/test.py main(): --out-item metrics writes the metrics; --tta (flip) runs."""
    test_tool = _load_tool('test')
    out_json = tmp_path / 'metrics.json'
    metrics = test_tool.main([
        resumed_run['cfg_path'], str(resumed_run['work'] / 'iter_4.pth'), '--work-dir',
        str(tmp_path / 'w'), '--out', str(out_json), '--out-item', 'metrics', '--tta',
        '--cfg-options', 'experiment_name=tools_test_inproc'])
    import json
    saved = json.loads(out_json.read_text())
    assert set(saved) == set(metrics) and 'accuracy/top1' in saved
    assert saved['accuracy/top1'] == pytest.approx(metrics['accuracy/top1'])
    with pytest.raises(ValueError, match='--out'):
        test_tool.main([resumed_run['cfg_path'], 'x.pth', '--out-item', 'metrics'])


def test_train_help_documents_cpu_amp(capsys):
    train_tool = _load_tool('train')
    with pytest.raises(SystemExit):
        train_tool.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'bfloat16' in text and 'CPUAmpOptimWrapper' in text
    for flag in ('--resume', '--amp', '--no-validate', '--auto-scale-lr', '--no-pin-memory',
                 '--no-persistent-workers', '--cfg-options', '--launcher', '--local_rank'):
        assert flag in text, flag
    args = train_tool.parse_args(['cfg.py', '--resume'])
    assert args.resume == 'auto'
    args = train_tool.parse_args(['cfg.py', '--resume', 'a.pth', '--local-rank', '1'])
    assert args.resume == 'a.pth' and args.local_rank == 1


def test_cuda_checks_script_runs_selected_steps_and_counts_failures(tmp_path):
    """scripts/cuda_checks.sh without a GPU: its plumbing (ONLY= selection, one log per step,
    exit status = failed steps) with a stand-in interpreter; the checks themselves need CUDA."""
    script = str(REPO_ROOT / 'scripts' / 'cuda_checks.sh')
    for stand_in, expect_rc in (('true', 0), ('false', 2)):
        out = tmp_path / stand_in
        proc = subprocess.run(['bash', script, str(out)], cwd=str(REPO_ROOT),
                              env=dict(os.environ, PYTHON=stand_in, ONLY='sync cost_b32'),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == expect_rc, proc.stdout + proc.stderr
        assert sorted(p.name for p in out.iterdir()) == ['cost_b32.log', 'sync.log']
        assert f'failed steps: {expect_rc}' in proc.stdout
        assert '=== sync: ' in proc.stdout and '=== op_time' not in proc.stdout
    # by default the checks run the RoI head's default backend, the one RM trains with
    from mmrm.models import RoIConsistencyHead
    default = inspect.signature(RoIConsistencyHead).parameters['roi_backend'].default
    for env, backend in (({}, default), (dict(ROI_BACKEND='torchvision'), 'torchvision')):
        proc = subprocess.run(['bash', script, str(tmp_path / f'b_{backend}')],
                              cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PYTHON='true', ONLY='sync', **env))
        sync_cmd = next(line for line in proc.stdout.splitlines() if line.startswith('=== sync:'))
        assert f'model.roi_head.roi_backend={backend} ' in sync_cmd + ' ', sync_cmd


@pytest.fixture(scope='module')
def tiny_cfg_path(tiny_image_folder, tmp_path_factory):
    cfg = tiny_cls_config(tiny_image_folder, max_iters=1)
    return write_config(cfg, tmp_path_factory.mktemp('ckpt_cfg') / 'tiny.py')


@pytest.mark.parametrize('case', list(UNUSABLE))
@pytest.mark.parametrize('tool', ['train', 'test'])
def test_an_unusable_checkpoint_stops_the_tool_with_one_message(tool, case, tiny_cfg_path,
                                                                tmp_path):
    """train.py --resume FILE / test.py CONFIG FILE: the message names the file and what is
    wrong with it (no torch / pickle traceback, no advice to switch weights_only off)."""
    path, message = unusable_checkpoint(case, tmp_path)
    argv = ([tiny_cfg_path, '--resume', path] if tool == 'train' else [tiny_cfg_path, path])
    with pytest.raises(SystemExit) as err:
        _load_tool(tool).main(argv + ['--work-dir', str(tmp_path / 'w'), '--cfg-options',
                                      f'experiment_name=unusable_{tool}_{case}'])
    assert re.fullmatch(rf'tools/{tool}.py: {message}.*', str(err.value.code), re.S)
    assert 'weights_only' not in str(err.value.code)


def test_a_checkpoint_loaded_by_the_runner_is_named_too(tiny_cfg_path, tmp_path):
    """load_from (a run started from weights) goes through MMEngine's loader: same message."""
    path, message = unusable_checkpoint('truncated', tmp_path)
    with pytest.raises(SystemExit) as err:
        _load_tool('train').main([tiny_cfg_path, '--work-dir', str(tmp_path / 'w'),
                                  '--cfg-options', f'load_from={path}',
                                  'experiment_name=unusable_load_from'])
    assert re.fullmatch(rf'tools/train.py: {message}.*', str(err.value.code), re.S)


def test_resuming_from_weights_only_says_to_use_load_from(tiny_cfg_path, tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'conv.weight': torch.zeros(2)}, path)
    with pytest.raises(SystemExit, match=r'tools/train.py: checkpoint .*weights.pth: cannot '
                                         r'resume from it: it has no meta / state_dict'):
        _load_tool('train').main([tiny_cfg_path, '--resume', str(path)])


def test_train_py_prints_the_message_and_no_traceback(tiny_cfg_path, tmp_path):
    path, message = unusable_checkpoint('pickle', tmp_path)
    proc = subprocess.run([sys.executable, str(TOOLS / 'train.py'), tiny_cfg_path, '--resume',
                           path, '--work-dir', str(tmp_path / 'w')], env=tool_env(),
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1
    # no traceback, and no torch warning asking for weights_only=False or an issue either
    assert 'Traceback' not in proc.stderr and 'weights_only' not in proc.stderr
    assert re.fullmatch(rf'tools/train.py: {message}.*\n', proc.stderr.splitlines(True)[-1])
