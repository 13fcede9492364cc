"""The offline downstream configs (configs/downstream/fashion_mnist) inherit the real COCO / ADE20K
configs and change only what the data forces: dataset, image scale, classes, schedule, and the
widths of the network pretrained on Fashion-MNIST. Every other setting is the real config's."""
import re
from pathlib import Path

import pytest

from tests.utils import REPO_ROOT

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402

from mmrm.analysis.transfer import DOWNSTREAM_MODELS, pretrain_configs  # noqa: E402

OFFLINE = sorted((REPO_ROOT / 'configs/downstream/fashion_mnist').glob('*.py'))

# what the data may change (dotted keys of the flattened configs; list items by index)
COMMON = [
    r'canvas_.*', r'htc_(stage_stds|mask_head).*',  # the shared pieces themselves
    r'model\.data_preprocessor\.(mean|std|bgr_to_rgb|size)(\.\d+)*',
    r'model\.backbone\..*',  # the network pretrained on Fashion-MNIST
    r'(train|val|test)_dataloader\..*', r'(val|test)_evaluator\.ann_file',
    r'train_cfg\.(max_epochs|max_iters|val_interval)', r'param_scheduler\..*',
    r'optim_wrapper\.optimizer\.lr',
    r'default_hooks\.(checkpoint\.(max_keep_ckpts|interval)|logger\.interval)',
]
DET = [
    r'model\.neck\.(in_channels|out_channels)(\.\d+)?',
    r'model\.(bbox_head|rpn_head)\.(num_classes|in_channels|feat_channels)',
    r'model\.(bbox_head|rpn_head)\.anchor_generator\.strides\.\d+',
    r'model\.roi_head\.(bbox|mask|semantic)_roi_extractor\.(out_channels|featmap_strides'
    r'(\.\d+)?|finest_scale)',
    r'model\.roi_head\.(bbox_head|mask_head)(\.\d+)?\.(in_channels|fc_out_channels|'
    r'conv_out_channels|num_classes)',
    r'model\.roi_head\.semantic_head\.(in_channels|conv_out_channels|num_classes|'
    r'seg_scale_factor)',
    r'model\.train_cfg\.rpn_proposal\.(nms_pre|max_per_img)',
    r'model\.train_cfg\.rcnn(\.\d+)?\.sampler\.num', r'model\.test_cfg\.rpn\.(nms_pre|max_per_img)',
]
SEG = [r'model\.(decode_head|auxiliary_head)\.(in_channels(\.\d+)?|channels|num_classes)']


def flatten(value, prefix=''):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f'{prefix}{k}.'))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f'{prefix}{i}.'))
        return out or {prefix[:-1]: value}
    return {prefix[:-1]: value}


def parent_of(path: Path) -> str:
    text = path.read_text()
    return re.search(r"_base_ = \['(\.\./mm(?:det|seg)/[^']+)'", text).group(1)


def test_one_offline_config_per_paper_model():
    assert sorted(p.name for p in OFFLINE) == sorted(
        Path(m.config).name for m in DOWNSTREAM_MODELS.values())


@pytest.mark.parametrize('path', OFFLINE, ids=lambda p: p.stem.split('_')[0])
def test_only_what_the_data_forces_differs_from_the_real_config(path):
    offline = Config.fromfile(str(path))
    real = Config.fromfile(str((path.parent / parent_of(path)).resolve()))
    a, b = flatten(offline.to_dict()), flatten(real.to_dict())
    allowed = COMMON + (DET if offline.default_scope == 'mmdet' else SEG)
    changed = sorted(k for k in set(a) | set(b) if a.get(k, '<absent>') != b.get(k, '<absent>'))
    unexplained = [k for k in changed if not any(re.fullmatch(p, k) for p in allowed)]
    assert not unexplained, unexplained
    # and those that must differ do: the pretrained network, the canvases, their classes
    assert offline.model.backbone.type == 'mmpretrain.ResNet_CIFAR'
    assert offline.model.backbone.init_cfg == dict(
        type='Pretrained', prefix='backbone.',
        checkpoint='work_dirs/downstream/pretrain/rm_seed0/backbone.pth')
    assert offline.model.data_preprocessor.mean == [72.94]  # the pretraining's statistics
    assert 'fashion_mnist_canvas' in offline.train_dataloader.dataset.data_root
    # the real config's optimiser type and its other settings are kept
    assert offline.optim_wrapper.optimizer.type == real.optim_wrapper.optimizer.type


def test_the_backbone_is_the_pretraining_network():
    pre = Config.fromfile(str(REPO_ROOT / pretrain_configs()['rm'])).model.backbone
    for path in OFFLINE:
        bb = Config.fromfile(str(path)).model.backbone
        for key in ('depth', 'in_channels', 'stem_channels', 'base_channels', 'num_stages'):
            assert bb[key] == pre[key], (path.name, key)
        assert bb.out_indices == (0, 1, 2, 3)


def test_schedules():
    det = [p for p in OFFLINE if Config.fromfile(str(p)).default_scope == 'mmdet']
    for path in det:  # mmdet's 1x: 12 epochs, steps at 8 and 11
        cfg = Config.fromfile(str(path))
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.param_scheduler[1].milestones == [8, 11]
    for path in set(OFFLINE) - set(det):
        cfg = Config.fromfile(str(path))
        assert cfg.train_cfg.max_iters == 1000
        (poly, ) = cfg.param_scheduler
        assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 0.9, 0., 1000)
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
