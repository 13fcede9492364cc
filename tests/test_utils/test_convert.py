"""Deploy export: an RM checkpoint becomes a plain ImageClassifier with the baseline's size; an
unusable source checkpoint stops the converters with one message naming it."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import mmrm  # noqa: F401
from mmrm.utils import convert_rm_checkpoint
from tests.test_engine.test_checkpoint import UNUSABLE, unusable_checkpoint
from tests.utils import REPO_ROOT, load_tool

ROOT = str(REPO_ROOT)

BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8)
HEAD = dict(type='LinearClsHead', num_classes=7, in_channels=64,
            loss=dict(type='CrossEntropyLoss', use_soft=True))


def rm_model():
    return MODELS.build(dict(type='RMClassifier', backbone=BACKBONE,
                             neck=dict(type='GlobalAveragePooling'), head=HEAD,
                             data_preprocessor=dict(num_classes=7)))


def plain_model():
    return MODELS.build(dict(type='ImageClassifier', backbone=BACKBONE,
                             neck=dict(type='GlobalAveragePooling'), head=HEAD))


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_rm2cls_loads_into_plain_classifier_with_zero_mismatch(tmp_path):
    rm = rm_model()
    rm.init_weights()
    src, dst = tmp_path / 'rm.pth', tmp_path / 'cls.pth'
    torch.save(dict(meta=dict(epoch=3, seed=0), state_dict=rm.state_dict(),
                    optimizer=dict(state={}, param_groups=[])), src)
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools/model_converters/rm2cls.py'),
                          str(src), str(dst)], capture_output=True, text=True, check=True)
    assert 'dropped 2 RM-only keys: roi_head.fc.bias, roi_head.fc.weight' in out.stdout

    plain = plain_model()
    ckpt = torch.load(dst, map_location='cpu')
    assert set(ckpt) == {'meta', 'state_dict'}
    result = plain.load_state_dict(ckpt['state_dict'], strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert count(plain) == count(rm) - (64 * 7 + 7)
    x = torch.rand(2, 3, 32, 32)
    rm.eval()
    plain.eval()
    # the exported model predicts exactly what the RM model predicts
    assert torch.equal(plain(x, mode='tensor'), rm(x, mode='tensor'))
    # and mmengine's own loader agrees (it would warn on any mismatch)
    load_checkpoint(plain_model(), str(dst), map_location='cpu', strict=True)


def test_backbone_only_conversion_and_prefix_strip():
    state = rm_model().state_dict()
    out, dropped = convert_rm_checkpoint(dict(state_dict=state, meta={}), backbone_only=True)
    assert all(k.startswith('backbone.') for k in out['state_dict'])
    assert sorted(dropped) == sorted(k for k in state if not k.startswith('backbone.'))
    bare, _ = convert_rm_checkpoint(dict(state_dict=state), backbone_only=True, strip_prefix=True)
    backbone = MODELS.build(BACKBONE)
    res = backbone.load_state_dict(bare['state_dict'], strict=True)
    assert res.missing_keys == [] and res.unexpected_keys == []


def test_swin_stage_norms_are_added_at_layernorm_init_and_nothing_else_changes():
    from mmrm.utils import add_swin_stage_norms
    state = {'backbone.stages.0.blocks.0.norm1.weight': torch.rand(4),
             'backbone.stages.1.blocks.0.norm1.weight': torch.rand(8),
             'backbone.norm1.weight': torch.rand(8), 'backbone.norm1.bias': torch.rand(8),
             'backbone.patch_embed.projection.weight': torch.rand(4, 3, 4, 4)}
    before = {k: v.clone() for k, v in state.items()}
    added = add_swin_stage_norms(state)
    assert added == ['backbone.norm0.weight', 'backbone.norm0.bias']
    assert torch.equal(state['backbone.norm0.weight'], torch.ones(4))
    assert torch.equal(state['backbone.norm0.bias'], torch.zeros(4))
    assert all(torch.equal(state[k], v) for k, v in before.items())
    with pytest.raises(ValueError, match='no Swin backbone'):
        add_swin_stage_norms({'backbone.conv1.weight': torch.rand(1)})


def test_rm2backbone_takes_the_best_checkpoint_of_a_work_dir(tmp_path):
    """What the downstream configs document (the authors fine-tune their best epoch):
    ``rm2backbone.py WORK_DIR OUT`` converts WORK_DIR's one ``best_*.pth``, not the last epoch."""
    best, last = rm_model(), rm_model()
    for p in best.parameters():
        p.data.fill_(0.5)
    work = tmp_path / 'work'
    work.mkdir()
    torch.save(dict(state_dict=best.state_dict()), work / 'best_accuracy_top1_epoch_3.pth')
    torch.save(dict(state_dict=last.state_dict()), work / 'epoch_4.pth')
    tool = osp.join(ROOT, 'tools/model_converters/rm2backbone.py')
    out = tmp_path / 'backbone.pth'
    proc = subprocess.run([sys.executable, tool, str(work), str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'best checkpoint of' in proc.stdout and 'best_accuracy_top1_epoch_3.pth' in proc.stdout
    state = torch.load(out)['state_dict']
    assert set(state) == {'backbone.' + k for k in best.backbone.state_dict()}
    assert all(torch.all(v == 0.5) for k, v in state.items() if k.endswith('conv1.weight'))
    (work / 'best_accuracy_top1_epoch_3.pth').unlink()
    proc = subprocess.run([sys.executable, tool, str(work), str(out)], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and '0 best_*.pth checkpoints (found: epoch_4.pth)' in \
        proc.stderr and 'save_best' in proc.stderr


@pytest.mark.parametrize('case', list(UNUSABLE) + ['no weights'])
@pytest.mark.parametrize('tool', ['rm2cls', 'rm2backbone'])
def test_an_unusable_checkpoint_stops_the_converter_with_one_message(tool, case, tmp_path):
    if case == 'no weights':
        src = str(tmp_path / 'hub.pth')
        torch.save(dict(message_hub={}, epoch=3), src)
        message = (rf"checkpoint {re.escape(src)}: holds no model weights \(a dict with keys "
                   r"'message_hub', 'epoch', where a checkpoint has a 'state_dict'")
    else:
        src, message = unusable_checkpoint(case, tmp_path)
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit) as err:
        load_tool(f'tools/model_converters/{tool}.py').main([src, str(dst)])
    assert re.match(rf'{tool}: {message}', str(err.value.code))
    assert 'weights_only' not in str(err.value.code) and not dst.exists()


@pytest.mark.parametrize('tool,case', [('rm2cls', 'truncated'), ('rm2backbone', 'pickle')])
def test_a_converter_prints_the_message_and_no_traceback(tool, case, tmp_path):
    src, message = unusable_checkpoint(case, tmp_path)
    proc = subprocess.run([sys.executable, osp.join(ROOT, f'tools/model_converters/{tool}.py'),
                           src, str(tmp_path / 'out.pth')], capture_output=True, text=True)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'weights_only' not in proc.stderr
    assert re.fullmatch(rf'{tool}: {message}.*\n', proc.stderr.splitlines(True)[-1])
