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

from mmrm.experiments.transfer import DOWNSTREAM_MODELS, pretrain_configs  # noqa: E402

OFFLINE = sorted((REPO_ROOT / 'configs/downstream/fashion_mnist').glob('*.py'))

# What may differ from the real config (dotted keys of the flattened configs; list items by
# index), in three lists: what the data forces, the schedule, and the CPU-time cuts. This pins
# that every OTHER key is the real config's; it does not pin the values of these keys (a few are
# asserted below and in test_schedules / test_htc_stays_htc; the README states the others).
COMMON = [  # what the data forces: the canvases, grey input, the network pretrained on them
    r'canvas_.*', r'htc_(stage_stds|mask_head).*',  # the shared pieces themselves
    r'model\.data_preprocessor\.(mean|std|bgr_to_rgb|size)(\.\d+)*',
    r'model\.backbone\..*',  # the network pretrained on Fashion-MNIST
    r'(train|val|test)_dataloader\..*', r'(val|test)_evaluator\.ann_file',
]
SCHEDULE = [  # a schedule for 200 canvases on a CPU (a CPU-time choice too), and its logging
    r'train_cfg\.(max_epochs|max_iters|val_interval)', r'param_scheduler\..*',
    r'optim_wrapper\.optimizer\.lr',
    r'default_hooks\.(checkpoint\.(max_keep_ckpts|interval)|logger\.interval)',
]
DET = [  # the data: classes, the backbone's widths and strides (items ~1/4 of a COCO object)
    r'model\.neck\.in_channels(\.\d+)?',
    r'model\.(bbox_head|rpn_head)\.num_classes',
    r'model\.(bbox_head|rpn_head)\.anchor_generator\.strides\.\d+',
    r'model\.roi_head\.(bbox|mask)_roi_extractor\.(featmap_strides(\.\d+)?|finest_scale)',
    r'model\.roi_head\.(bbox_head|mask_head)(\.\d+)?\.num_classes',
]
DET_CPU_CUTS = [  # CPU-time cuts, not forced by the data, named one by one
    # FPN 256 -> 64 channels, and the heads' widths that follow it; box fc 1024 -> 256
    r'model\.neck\.out_channels', r'model\.(bbox_head|rpn_head)\.(in_channels|feat_channels)',
    r'model\.roi_head\.(bbox|mask)_roi_extractor\.out_channels',
    r'model\.roi_head\.(bbox_head|mask_head)(\.\d+)?\.(in_channels|fc_out_channels|'
    r'conv_out_channels)',
    # proposals / 5, RoI samples 512 -> 64 (HTC: 32 per stage)
    r'model\.train_cfg\.rpn_proposal\.(nms_pre|max_per_img)',
    r'model\.train_cfg\.rcnn(\.\d+)?\.sampler\.num', r'model\.test_cfg\.rpn\.(nms_pre|max_per_img)',
    # HTC: semantic branch off, 2 convs per mask head (it stays HTC: test_htc_stays_htc)
    r'model\.roi_head\.semantic_(roi_extractor|head)(\..*)?',
    r'model\.roi_head\.mask_head\.\d+\.num_convs',
    r'train_dataloader\.dataset\.data_prefix\.seg',  # no label maps without the semantic branch
]
SEG = [  # the data: classes, the backbone's widths; the evaluator: IoUMetric + per-class IoU
    r'model\.(decode_head|auxiliary_head)\.(in_channels(\.\d+)?|num_classes)',
    r'(val|test)_evaluator\.type', r'custom_imports\.imports\.1',
]
SEG_CPU_CUTS = [r'model\.(decode_head|auxiliary_head)\.channels']  # 512 -> 32, aux 256 -> 16
SEG_RECIPE = [  # chosen on the val canvases (canvas.py says how): the heads' lr multiplier
    r'optim_wrapper\.paramwise_cfg\.custom_keys\.head\.lr_mult',
]


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
    allowed = COMMON + SCHEDULE + (DET + DET_CPU_CUTS if offline.default_scope == 'mmdet'
                                   else SEG + SEG_CPU_CUTS + SEG_RECIPE)
    changed = sorted(k for k in set(a) | set(b) if a.get(k, '<absent>') != b.get(k, '<absent>'))
    unexplained = [k for k in changed if not any(re.fullmatch(p, k) for p in allowed)]
    assert not unexplained, unexplained
    # and those that must differ do: the pretrained network, the canvases, their classes
    assert offline.model.backbone.type == 'mmpretrain.ResNet_CIFAR'
    # the default checkpoint is where a run by hand writes the RM pretraining's backbone:
    # tools/train.py's default work dir of the RM config, then rm2backbone.py into it
    rm_stem = Path(pretrain_configs()['rm']).stem
    assert offline.model.backbone.init_cfg == dict(
        type='Pretrained', prefix='backbone.',
        checkpoint=f'work_dirs/{rm_stem}/backbone.pth')
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
        warmup, poly = cfg.param_scheduler  # 100 iterations of linear warm-up, then poly to 0
        assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == ('LinearLR', 0, 100,
                                                                             False)
        assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end) == (
            'PolyLR', 0.9, 0., 100, 1000)
        # the paper's AdamW lr (ADE20K config's) on the backbone, the heads at a multiple
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
        assert cfg.optim_wrapper.optimizer.lr == 1e-4


@pytest.mark.parametrize('model', ['pspnet', 'upernet'])
def test_segmentor_heads_learn_at_the_multiplied_lr_and_the_backbone_at_the_base_lr(model):
    """The optimiser the Runner builds from the config: every decode / auxiliary head parameter
    at lr x canvas_seg_head_lr_mult, every backbone parameter at the base lr; a scratch run
    (SEG_SCRATCH_OPTIONS) puts every parameter at the heads' lr."""
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from mmrm.experiments.transfer import parse_options, seg_scratch_options
    register_all_modules()
    import mmpretrain.models  # noqa: F401  (the backbone type)
    path = str(REPO_ROOT / DOWNSTREAM_MODELS[model].config)
    for scratch in (False, True):
        cfg = Config.fromfile(path)
        if scratch:
            cfg.merge_from_dict(parse_options(seg_scratch_options(path)))
        cfg.model.backbone.init_cfg = None
        cfg.model.decode_head.norm_cfg = cfg.model.auxiliary_head.norm_cfg = dict(type='BN')
        net = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(net, cfg.optim_wrapper)
        lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
        head = cfg.canvas_seg_lr * cfg.canvas_seg_head_lr_mult
        for name, p in net.named_parameters():
            want = head if scratch or 'head' in name.split('.')[0] else cfg.canvas_seg_lr
            assert lr_of[id(p)] == pytest.approx(want), name
        assert any(n.startswith('backbone.') for n, _ in net.named_parameters())


@pytest.mark.parametrize('path', OFFLINE, ids=lambda p: p.stem.split('_')[0])
def test_val_reads_the_val_canvases_and_test_the_test_canvases(path):
    """Every choice is made on val; only test is reported: the two loaders (and the COCO
    evaluators' annotation files) read different canvas splits."""
    cfg = Config.fromfile(str(path))
    val, test = cfg.val_dataloader.dataset, cfg.test_dataloader.dataset
    if cfg.default_scope == 'mmdet':
        assert (val.ann_file, val.data_prefix.img) == ('annotations/instances_val.json',
                                                       'images/val/')
        assert (test.ann_file, test.data_prefix.img) == ('annotations/instances_test.json',
                                                         'images/test/')
        assert cfg.val_evaluator.ann_file.endswith('fashion_mnist_canvas/annotations/'
                                                   'instances_val.json')
        assert cfg.test_evaluator.ann_file.endswith('fashion_mnist_canvas/annotations/'
                                                    'instances_test.json')
        assert val.pipeline == test.pipeline and not val.get('filter_cfg')
    else:
        assert dict(val.data_prefix) == dict(img_path='images/val', seg_map_path='seg_maps/val')
        assert dict(test.data_prefix) == dict(img_path='images/test',
                                              seg_map_path='seg_maps/test')
        assert val.pipeline == test.pipeline
        # the evaluator is IoUMetric (same means) with each class's IoU beside them
        from mmseg.evaluation import IoUMetric

        from mmrm.evaluation.seg_metric import ClassIoUMetric
        assert issubclass(ClassIoUMetric, IoUMetric)
        assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'ClassIoUMetric'
        assert 'mmrm.evaluation.seg_metric' in cfg.custom_imports.imports
        # the crops are the canvases' size (64 px), not 96
        crop = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop']
        assert crop[0].crop_size == (64, 64)
    assert val.data_root == test.data_root
    assert '96 px' not in path.read_text()


def test_class_iou_metric_returns_the_same_means_and_each_class():
    import torch
    from mmseg.evaluation import IoUMetric

    from mmrm.evaluation.seg_metric import ClassIoUMetric
    meta = dict(classes=('background', 'a', 'b', 'c'))
    # per image: (intersect, union, pred area, label area) per class; class c never occurs
    results = [(torch.tensor([8., 3., 1., 0.]), torch.tensor([10., 4., 4., 0.]),
                torch.tensor([9., 3., 3., 0.]), torch.tensor([9., 4., 2., 0.])),
               (torch.tensor([5., 1., 1., 0.]), torch.tensor([6., 4., 4., 0.]),
                torch.tensor([6., 2., 3., 0.]), torch.tensor([5., 3., 2., 0.]))]
    plain, ours = IoUMetric(), ClassIoUMetric()
    plain.dataset_meta = ours.dataset_meta = meta
    a, b = plain.compute_metrics(results), ours.compute_metrics(results)
    assert {k: b[k] for k in a} == a
    assert b['IoU.background'] == pytest.approx(100 * 13 / 16)
    assert b['IoU.a'] == pytest.approx(100 * 4 / 8) and b['IoU.b'] == pytest.approx(25.)
    assert b['IoU.c'] != b['IoU.c']  # NaN: neither labelled nor predicted


def test_htc_stays_htc():
    """Cheaper on the CPU, still HTC: three cascade stages with mmdet's IoU thresholds and box
    coder stds, interleaved box / mask branches, the mask information flow (every later mask
    head takes the earlier one's features); the semantic branch is off."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    (path, ) = [p for p in OFFLINE if p.name.startswith('htc_')]
    offline = Config.fromfile(str(path))
    real = Config.fromfile(str((path.parent / parent_of(path)).resolve()))
    rh, real_rh = offline.model.roi_head, real.model.roi_head
    assert rh.type == real_rh.type == 'HybridTaskCascadeRoIHead' and rh.num_stages == 3
    assert rh.interleaved and rh.mask_info_flow
    assert [h.bbox_coder.target_stds for h in rh.bbox_head] == [
        h.bbox_coder.target_stds for h in real_rh.bbox_head]
    assert [s.assigner.pos_iou_thr for s in offline.model.train_cfg.rcnn] == [0.5, 0.6, 0.7]
    assert [h.get('with_conv_res', True) for h in rh.mask_head] == [False, True, True]
    assert [h.num_convs for h in rh.mask_head] == [2, 2, 2]
    assert [s.sampler.num for s in offline.model.train_cfg.rcnn] == [32, 32, 32]
    assert rh.semantic_head is None and rh.semantic_roi_extractor is None
    init_default_scope('mmdet')
    offline.model.backbone.init_cfg = None
    model = MODELS.build(offline.model)
    assert not model.roi_head.with_semantic and model.roi_head.mask_info_flow
    assert all(not t.get('with_seg') for t in offline.train_dataloader.dataset.pipeline)
