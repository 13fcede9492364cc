"""The downstream chain, end to end (DESIGN §4, paper Tables 7-9).

RM pretraining (a tiny RMClassifier run, ResNet-50 and PVTv2-B1) writes a checkpoint; every
config in ``configs/downstream`` (4 detectors and 2 segmentors, each with ResNet-50 and
PVTv2-B1) loads it through the path the config triggers (``model.init_weights()`` with the
config's ``init_cfg``, inside ``Runner.train()``) with ZERO missing, ZERO unexpected and ZERO
shape-mismatched keys, the loaded tensors equal the checkpoint's, and one training iteration
plus one validation pass run on tiny synthetic COCO / ADE20K data in the real on-disk formats.
Only sizes, paths and loop lengths are changed, all through cfg-options (for detectors also
the score threshold / box, proposal and RoI-sample counts, so that an untrained model yields
boxes for CocoMetric and HTC stays cheap). Two configs run through ``python tools/train.py``
(one then through ``tools/test.py``) and one through ``tools/dist_train.sh`` with 2 CPU
processes instead; there the loading is checked in the log, and strictly in
``test_backbone_only_checkpoint_loads_with_zero_mismatch``.
"""
import importlib.util
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.utils import (REPO_ROOT, find_free_port, load_tool, make_image_folder,
                         tiny_cls_config, tool_env)

mmdet = pytest.importorskip('mmdet')
mmseg = pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmrm  # noqa: E402,F401
from mmrm.analysis.downstream import (BackboneInitReport, check_backbone_init,  # noqa: E402
                                   record_state_dict_loads)

CFG_DIR = REPO_ROOT / 'configs' / 'downstream'
DET_CONFIGS = sorted(str(p.relative_to(REPO_ROOT)) for p in (CFG_DIR / 'mmdet').glob('*.py'))
SEG_CONFIGS = sorted(str(p.relative_to(REPO_ROOT)) for p in (CFG_DIR / 'mmseg').glob('*.py'))
ALL_CONFIGS = DET_CONFIGS + SEG_CONFIGS
IMG = 64  # side of the synthetic images
# run through `python tools/train.py` (subprocess) instead of the in-process Runner
SUBPROCESS_CONFIGS = ('configs/downstream/mmdet/atss_r50_fpn_1x_coco.py',
                      'configs/downstream/mmseg/pspnet_pvtv2-b1_4xb4-80k_ade20k-512x512.py')
PVT_B1 = dict(type='PyramidVisionTransformerV2', embed_dims=64, num_layers=[2, 2, 2, 2])


def kind_of(config):
    name = Path(config).name
    return 'pvt' if 'pvtv2-b1' in name else 'swin' if 'swin-t' in name else 'r50'


def cid(config):
    return Path(config).stem


# --------------------------------------------------------------------------------------------
# RM pretraining -> checkpoints (once per module)
# --------------------------------------------------------------------------------------------
def _load_converter():
    spec = importlib.util.spec_from_file_location(
        'rm2backbone', REPO_ROOT / 'tools' / 'model_converters' / 'rm2backbone.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _swin_rm_model():
    """The model of configs/rm/swin-tiny_16xb64_in1k_rm.py (mmpretrain's Swin-T recipe with
    RM), for 4 classes."""
    model = Config.fromfile(str(REPO_ROOT / 'configs/rm/swin-tiny_16xb64_in1k_rm.py')).model
    model = model.to_dict()
    model['head']['num_classes'] = 4
    return model


@pytest.fixture(scope='module')
def rm_ckpts(tmp_path_factory):
    """``{'r50'|'pvt'|'swin': {'full', 'backbone', 'stripped'}}``: the RMClassifier training
    checkpoint after 2 iterations (the 2nd one mixes with the history) and rm2backbone.py's
    outputs (default: ``backbone.`` prefix kept; ``--strip-prefix``; Swin: both with
    ``--swin-stage-norms``)."""
    root = tmp_path_factory.mktemp('rm_pretrain')
    converter = _load_converter()
    rm_head = dict(roi_head=dict(type='RoIConsistencyHead', omega=0.5),
                   train_cfg=dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5)))
    models = dict(
        r50=(dict(type='RMClassifier', backbone=dict(type='ResNet', depth=50),
                  neck=dict(type='GlobalAveragePooling'),
                  head=dict(type='LinearClsHead', num_classes=4, in_channels=2048,
                            loss=dict(type='CrossEntropyLoss', use_soft=True)), **rm_head), 32),
        pvt=(dict(type='RMClassifier', backbone=dict(
            type='PyramidVisionTransformerV2Cls', embed_dims=64, num_layers=[2, 2, 2, 2]),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=4, in_channels=512,
                      loss=dict(type='CrossEntropyLoss', use_soft=True)), **rm_head), 32),
        swin=(_swin_rm_model(), 224))  # Swin-T's 7x7 windows: the 224 input of its recipe
    out = {}
    for kind, (model, size) in models.items():
        data = make_image_folder(root / f'data{size}', num_classes=4, images_per_class=1,
                                 size=size)
        cfg = tiny_cls_config(data, work_dir=root / kind, num_classes=4, img_size=size,
                              batch_size=2, max_iters=2, val=False,
                              lr=1e-3)  # a sane checkpoint: lr 0.1 x 2 steps blows R-50 up
        preprocessor = dict(cfg['model']['data_preprocessor'], type='RMDataPreprocessor')
        cfg['model'] = dict(model, data_preprocessor=preprocessor)
        cfg['experiment_name'] = f'rm_pretrain_{kind}'
        Runner.from_cfg(Config(cfg)).train()
        full = root / kind / 'iter_2.pth'
        assert full.is_file()
        backbone_ckpt, stripped = root / f'{kind}_backbone.pth', root / f'{kind}_stripped.pth'
        extra = ['--swin-stage-norms'] if kind == 'swin' else []
        converter.main([str(full), str(backbone_ckpt), *extra])
        converter.main([str(full), str(stripped), '--strip-prefix', *extra])
        out[kind] = dict(full=str(full), backbone=str(backbone_ckpt), stripped=str(stripped))
    return out


def ckpt_backbone(path):
    """The backbone tensors of a checkpoint file, under the backbone's own key names."""
    state = torch.load(path, map_location='cpu')
    state = state.get('state_dict', state)
    if any(k.startswith('backbone.') for k in state):
        return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    return dict(state)


def primary_ckpt(rm_ckpts, config):
    """What the README tells users to load: the RM training checkpoint itself for ResNet-50
    (``prefix='backbone.'``), rm2backbone.py's ``--strip-prefix`` output for PVTv2-B1, its
    ``--swin-stage-norms`` output (prefix kept) for Swin-T."""
    kind = kind_of(config)
    return rm_ckpts[kind][dict(r50='full', pvt='stripped', swin='backbone')[kind]]


def test_rm_checkpoints_hold_the_rm_head_and_converters_drop_it(rm_ckpts):
    for kind, paths in rm_ckpts.items():
        full = torch.load(paths['full'], map_location='cpu')['state_dict']
        assert any(k.startswith('roi_head.fc.') for k in full), kind
        bb = torch.load(paths['backbone'], map_location='cpu')['state_dict']
        assert bb and all(k.startswith('backbone.') for k in bb)
        norms = {f'backbone.norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
        assert set(bb) == {k for k in full if k.startswith('backbone.')} | (
            norms if kind == 'swin' else set())
        stripped = torch.load(paths['stripped'], map_location='cpu')['state_dict']
        assert set(stripped) == {k[len('backbone.'):] for k in bb}
    assert all(k.startswith('layers.') for k in ckpt_backbone(rm_ckpts['pvt']['stripped']))


# --------------------------------------------------------------------------------------------
# the configs themselves
# --------------------------------------------------------------------------------------------
def test_there_are_the_paper_configs():
    names = {Path(c).name for c in ALL_CONFIGS}
    for det in ('atss', 'gfl', 'mask-rcnn', 'htc'):
        for bb in ('r50', 'pvtv2-b1'):
            assert f'{det}_{bb}_fpn_1x_coco.py' in names
    for seg in ('pspnet_pvtv2-b1', 'upernet_pvtv2-b1'):
        assert f'{seg}_4xb4-80k_ade20k-512x512.py' in names
    for seg in ('pspnet_r50-d8', 'upernet_r50'):  # as the authors' logs: 8 GPUs x 2 images
        assert f'{seg}_8xb2-80k_ade20k-512x512.py' in names
    # a transformer chain beyond the paper: Swin-T RM pretraining -> Mask R-CNN / UperNet
    assert 'mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py' in names
    assert 'upernet_swin-t-p4-w7_8xb2-80k_ade20k-512x512.py' in names
    assert len(ALL_CONFIGS) == 14


@pytest.mark.parametrize('config', ALL_CONFIGS, ids=cid)
def test_config_settings(config):
    cfg = Config.fromfile(str(REPO_ROOT / config))
    det = config in DET_CONFIGS
    assert cfg.default_scope == ('mmdet' if det else 'mmseg')
    assert cfg.custom_imports == dict(imports=['mmrm'], allow_failed_imports=False)
    bb = cfg.model.backbone
    assert bb.init_cfg.type == 'Pretrained'
    assert bb.init_cfg.checkpoint == cfg.checkpoint
    if kind_of(config) == 'r50':
        assert bb.type == 'ResNet' and bb.depth == 50 and not bb.get('deep_stem', False)
        assert bb.init_cfg.prefix == 'backbone.'
        # the backbone of the best epoch (rm2backbone.py on the work dir), as the authors
        assert cfg.checkpoint == 'work_dirs/resnet50_8xb32_in1k_rm/backbone.pth'
        if det:  # mmdet's defaults
            assert bb.frozen_stages == 1 and bb.norm_eval is True
            assert cfg.optim_wrapper.optimizer.type == 'SGD'
        else:  # the authors' UperNet logs: AdamW 1e-4, wd 1e-4, poly(0.9) to 0, 8 x 2 images
            opt = cfg.optim_wrapper.optimizer
            assert dict(opt) == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
            (poly, ) = cfg.param_scheduler
            assert (poly.type, poly.eta_min, poly.power, poly.end) == ('PolyLR', 0., 0.9, 80000)
            assert cfg.train_dataloader.batch_size == 2 and bb.norm_eval is False
            assert tuple(bb.strides) == ((1, 2, 1, 1) if 'pspnet' in config else (1, 2, 2, 2))
    elif kind_of(config) == 'swin':
        # mmdet's / mmseg's own Swin-T, reading mmpretrain's key names (no converter)
        assert bb.type == 'SwinTransformer' and bb.embed_dims == 96
        assert list(bb.depths) == [2, 2, 6, 2] and bb.window_size == 7
        assert not bb.get('convert_weights', False) and 'prefix' not in bb.init_cfg
        assert 'swin-tiny_16xb64_in1k_rm' in cfg.checkpoint
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    else:
        assert bb.type == ('PyramidVisionTransformerV2' if det
                           else 'mmdet.PyramidVisionTransformerV2')
        assert {k: bb[k] for k in PVT_B1 if k != 'type'} == {
            k: v for k, v in PVT_B1.items() if k != 'type'}
        # mmdet's PVT loader ignores `prefix`: the configs take a stripped checkpoint
        assert 'prefix' not in bb.init_cfg
        assert 'pvt-v2-b1_8xb128_in1k_rm' in cfg.checkpoint
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 1e-4, 1e-4)
        assert set(opt) == {'type', 'lr', 'weight_decay'}
    if det:
        assert cfg.train_cfg.max_epochs == 12  # 1x
        assert 'coco' in cfg.train_dataloader.dataset.data_root
        if kind_of(config) == 'pvt':
            assert cfg.model.neck.in_channels == [64, 128, 320, 512]
    else:
        assert cfg.model.pretrained is None
        assert cfg.train_cfg.max_iters == 80000
        assert cfg.crop_size == (512, 512)
        assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
        if kind_of(config) == 'pvt':
            head = cfg.model.decode_head
            assert head.in_channels == (512 if head.type == 'PSPHead' else [64, 128, 320, 512])
            assert cfg.model.auxiliary_head.in_channels == 320
            assert [s.type for s in cfg.param_scheduler] == ['PolyLR']


def _train_tool():
    spec = importlib.util.spec_from_file_location('mmrm_tools_train',
                                                  REPO_ROOT / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('config', [
    'configs/downstream/mmdet/htc_r50_fpn_1x_coco.py',
    'configs/downstream/mmseg/upernet_pvtv2-b1_4xb4-80k_ade20k-512x512.py'
], ids=cid)
def test_cfg_options_override_that_reaches_the_backbone(config):
    """``--cfg-options checkpoint=X`` only rewrites the top-level variable (substituted when
    the file was parsed); ``model.backbone.init_cfg.checkpoint=X`` is what reaches the
    backbone. Checked through tools/train.py's own argument handling."""
    train = _train_tool()
    default = Config.fromfile(str(REPO_ROOT / config)).model.backbone.init_cfg.checkpoint

    args = train.parse_args([config, '--cfg-options', 'checkpoint=/x/var.pth'])
    cfg = train.merge_args(Config.fromfile(config), args)
    assert cfg.checkpoint == '/x/var.pth'
    assert cfg.model.backbone.init_cfg.checkpoint == default  # NOT overridden

    args = train.parse_args(
        [config, '--cfg-options', 'model.backbone.init_cfg.checkpoint=/x/real.pth'])
    cfg = train.merge_args(Config.fromfile(config), args)
    assert cfg.model.backbone.init_cfg.checkpoint == '/x/real.pth'
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    if kind_of(config) == 'r50':
        assert cfg.model.backbone.init_cfg.prefix == 'backbone.'


# --------------------------------------------------------------------------------------------
# loading: the converter outputs, and proof that the check sees mismatches
# --------------------------------------------------------------------------------------------
def assert_loaded_exactly(report: BackboneInitReport, backbone_state, ckpt):
    assert report.ok, f'{ckpt}:\n{report}'
    expected = ckpt_backbone(ckpt)
    assert set(backbone_state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(backbone_state[key], value), key


@pytest.mark.parametrize(
    'config', [c for c in ALL_CONFIGS if kind_of(c) != 'pvt' or c in SUBPROCESS_CONFIGS],
    ids=cid)
def test_backbone_only_checkpoint_loads_with_zero_mismatch(config, rm_ckpts):
    """rm2backbone.py's output through ``model.init_weights()``: ResNet-50 with the default
    output (prefix kept, the config's ``prefix='backbone.'``). PVTv2-B1 configs load the
    ``--strip-prefix`` output in the training tests below already; the one trained through
    the tools/train.py subprocess is checked here too, strictly."""
    kind = kind_of(config)
    ckpt = rm_ckpts[kind]['stripped' if kind == 'pvt' else 'backbone']
    report = check_backbone_init(REPO_ROOT / config, checkpoint=ckpt)
    assert_loaded_exactly(report, report.model.backbone.state_dict(), ckpt)


def test_checker_cli(rm_ckpts, capsys):
    main = load_tool('tools/analysis_tools/check_backbone_init.py').main
    config = str(REPO_ROOT / 'configs/downstream/mmdet/gfl_pvtv2-b1_fpn_1x_coco.py')
    assert main([config, '--checkpoint', rm_ckpts['pvt']['stripped']]) == 0
    assert 'OK' in capsys.readouterr().out
    assert main([config, '--checkpoint', rm_ckpts['pvt']['full']]) == 1
    assert 'MISMATCH' in capsys.readouterr().out


def test_swin_without_stage_norms_is_caught(rm_ckpts, tmp_path):
    """MMDetection's Swin loads with ``nn.Module.load_state_dict(strict=False)``, which warns
    about nothing: the recorder sees that call too, so a Swin checkpoint written without
    ``--swin-stage-norms`` reports exactly the three stage-output norms it lacks."""
    plain = tmp_path / 'swin_plain.pth'
    _load_converter().main([rm_ckpts['swin']['full'], str(plain)])
    report = check_backbone_init(
        REPO_ROOT / 'configs/downstream/mmdet/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
        checkpoint=str(plain))
    assert not report.ok
    (load, ) = report.backbone_loads
    assert load.missing_keys == sorted(f'norm{i}.{p}' for i in range(3)
                                       for p in ('bias', 'weight'))
    assert not load.unexpected_keys and not load.mismatched_shapes


class _ListHandler(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_full_pvt_checkpoint_is_caught_not_silently_ignored(rm_ckpts):
    """mmdet's PVT ignores ``prefix``: the full RM checkpoint (``backbone.*`` keys) loads
    nothing. The recorder must see every key as unexpected/missing (so the zero-mismatch
    assertions elsewhere are not vacuous), and MMEngine's warning is the one tools/train.py
    prints (the subprocess test looks for its absence)."""
    handler = _ListHandler()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        cfg = Config.fromfile(
            str(REPO_ROOT / 'configs/downstream/mmdet/atss_pvtv2-b1_fpn_1x_coco.py'))
        cfg.merge_from_dict({'model.backbone.init_cfg.prefix': 'backbone.'})  # what users try
        report = check_backbone_init(cfg, checkpoint=rm_ckpts['pvt']['full'])
    finally:
        logger.removeHandler(handler)
    assert not report.ok
    (load, ) = report.backbone_loads
    full = torch.load(rm_ckpts['pvt']['full'], map_location='cpu')['state_dict']
    # nothing matched (mmdet's pvt_convert drops the classifier's `head.*` on the way)
    assert set(load.unexpected_keys) == {k for k in full if not k.startswith('head.')}
    assert {k for k in full if k.startswith('backbone.')} <= set(load.unexpected_keys)
    assert set(load.missing_keys) == set(report.model.backbone.state_dict())
    assert any('do not match exactly' in m and 'unexpected key' in m for m in handler.messages)


# --------------------------------------------------------------------------------------------
# tiny synthetic COCO and ADE20K in their on-disk formats
# --------------------------------------------------------------------------------------------
def _rng_image(rng, boxes):
    img = rng.randint(0, 80, size=(IMG, IMG, 3)).astype(np.uint8)
    for x0, y0, x1, y1 in boxes:
        img[y0:y1, x0:x1] = rng.randint(120, 255, size=3)
    return img


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """``annotations/instances_{train,val}2017.json`` (boxes + polygon masks), ``{train,
    val}2017/*.jpg`` and HTC's ``stuffthingmaps/train2017/*.png`` (stuff/thing label maps)."""
    from PIL import Image
    root = tmp_path_factory.mktemp('coco')
    rng = np.random.RandomState(0)
    objects = {1: [(4, 6, 30, 40, 1), (34, 30, 60, 58, 3)], 2: [(10, 12, 50, 44, 3)]}
    # all 80 COCO categories with COCO's own ids (1..90 with gaps): the detectors predict 80
    from mmdet.datasets import CocoDataset
    coco_ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    categories = [dict(id=i, name=name, supercategory='thing')
                  for i, name in zip(coco_ids, CocoDataset.METAINFO['classes'])]
    assert categories[0]['name'] == 'person' and categories[2]['name'] == 'car'
    assert categories[2]['id'] == 3 and categories[-1] == dict(
        id=90, name='toothbrush', supercategory='thing')
    images, anns = [], []
    for split in ('train2017', 'val2017', 'stuffthingmaps/train2017'):
        (root / split).mkdir(parents=True)
    (root / 'annotations').mkdir()
    for img_id, objs in objects.items():
        name = f'{img_id:012d}.jpg'
        img = _rng_image(rng, [o[:4] for o in objs])
        for split in ('train2017', 'val2017'):
            Image.fromarray(img).save(root / split / name)
        stuff = np.full((IMG, IMG), 182, np.uint8)  # 'other' stuff
        for x0, y0, x1, y1, cat in objs:
            stuff[y0:y1, x0:x1] = cat - 1  # things: category id - 1
        Image.fromarray(stuff).save(
            root / 'stuffthingmaps/train2017' / name.replace('.jpg', '.png'))
        images.append(dict(id=img_id, file_name=name, width=IMG, height=IMG))
        for x0, y0, x1, y1, cat in objs:
            w, h = x1 - x0, y1 - y0
            poly = [x0, y0, x1, y0, x1, y1, (x0 + x1) / 2, y1 + 0.0, x0, y1]
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=cat,
                             bbox=[x0, y0, w, h], area=float(w * h), iscrowd=0,
                             segmentation=[[float(v) for v in poly]]))
    for split in ('train2017', 'val2017'):
        (root / 'annotations' / f'instances_{split}.json').write_text(json.dumps(
            dict(images=images, annotations=anns, categories=categories)))
    return str(root)


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    """ADEChallengeData2016 layout: ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png`` (0 = other, 1..150 = classes)."""
    from PIL import Image
    root = tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016'
    rng = np.random.RandomState(1)
    for split in ('training', 'validation'):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(2):
            boxes = [(0, 0, IMG, IMG // 2), (8, 36, 40, 60), (44, 8, 60, 56)]
            img = _rng_image(rng, boxes)
            seg = np.zeros((IMG, IMG), np.uint8)
            for (x0, y0, x1, y1), label in zip(boxes, (1, 5 + i, 150)):
                seg[y0:y1, x0:x1] = label
            name = f'ADE_{split[:5]}_{i:08d}'
            Image.fromarray(img).save(root / 'images' / split / f'{name}.jpg')
            Image.fromarray(seg).save(root / 'annotations' / split / f'{name}.png')
    return str(root)


def tiny_options(cfg, config, coco_root, ade_root, ckpt):
    """cfg-options that shrink a downstream config to one train iteration and one val pass on
    the tiny data: paths, image scales, batch size 2, no workers, no checkpoint saving."""
    det = config in DET_CONFIGS
    opts = {'model.backbone.init_cfg.checkpoint': ckpt,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.interval': 10**6,
            'default_hooks.checkpoint.save_last': False}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts[f'{loader}.batch_size'] = 2
        opts[f'{loader}.num_workers'] = 0
        opts[f'{loader}.persistent_workers'] = False
        opts[f'{loader}.dataset.data_root'] = coco_root if det else ade_root
        for i, t in enumerate(cfg[loader].dataset.pipeline):
            if t.get('scale') is not None:  # keep the aspect, short side -> IMG
                opts[f'{loader}.dataset.pipeline.{i}.scale'] = tuple(
                    int(round(s * IMG / min(t['scale']))) for s in t['scale'])
            if t.get('crop_size') is not None:
                opts[f'{loader}.dataset.pipeline.{i}.crop_size'] = (IMG, IMG)
    if det:
        opts['train_cfg.max_epochs'] = 1  # 2 images, batch 2: one iteration, then val
        # an untrained detector scores below mmdet's 0.05: keep (10 of) its boxes so that
        # CocoMetric really evaluates something
        test_cfg = cfg.model.test_cfg
        key = 'model.test_cfg.rcnn' if 'rcnn' in test_cfg else 'model.test_cfg'
        opts[f'{key}.score_thr'] = 0.0
        opts[f'{key}.max_per_img'] = 10
        # two-stage: fewer proposals and RoI samples (512 per image x 3 stages for HTC)
        if 'rpn' in test_cfg:
            opts['model.test_cfg.rpn.max_per_img'] = 100
        train_cfg = cfg.model.train_cfg
        if 'rpn_proposal' in train_cfg:
            opts['model.train_cfg.rpn_proposal.max_per_img'] = 100
        rcnn = train_cfg.get('rcnn')
        for i, stage in enumerate(rcnn if isinstance(rcnn, list) else [rcnn] if rcnn else []):
            key = f'model.train_cfg.rcnn.{i}' if isinstance(rcnn, list) else 'model.train_cfg.rcnn'
            opts[f'{key}.sampler.num'] = 64
        for ev in ('val_evaluator', 'test_evaluator'):
            opts[f'{ev}.ann_file'] = f'{coco_root}/annotations/instances_val2017.json'
    else:
        opts['train_cfg.max_iters'] = 1
        opts['train_cfg.val_interval'] = 1
        opts['model.data_preprocessor.size'] = (IMG, IMG)
    return opts


def as_cli(opts):
    """The same options as ``--cfg-options`` strings."""
    def fmt(v):
        if isinstance(v, tuple):
            return '(' + ','.join(str(x) for x in v) + ')'
        return str(v)
    return [f'{k}={fmt(v)}' for k, v in opts.items()]


class _Probe(Hook):
    """Snapshots the backbone right after ``init_weights`` and records the train loss and
    the validation metrics."""
    priority = 'HIGHEST'

    def before_train(self, runner):
        self.backbone_state = {k: v.detach().clone()
                               for k, v in runner.model.backbone.state_dict().items()}
        self.losses, self.val_iters, self.metrics = [], 0, None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.val_iters += 1

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = metrics


@pytest.mark.parametrize(
    'config', [c for c in ALL_CONFIGS if c not in SUBPROCESS_CONFIGS], ids=cid)
def test_one_train_and_val_iteration_loads_the_rm_backbone(config, rm_ckpts, coco_root,
                                                           ade_root, tmp_path):
    ckpt = primary_ckpt(rm_ckpts, config)
    cfg = Config.fromfile(str(REPO_ROOT / config))
    cfg.merge_from_dict(tiny_options(cfg, config, coco_root, ade_root, ckpt))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = cid(config)
    runner = Runner.from_cfg(cfg)
    probe = _Probe()
    runner.register_hook(probe)
    with record_state_dict_loads() as loads:
        runner.train()
    # the real path: Runner.train() -> model.init_weights() -> the config's init_cfg
    assert_loaded_exactly(BackboneInitReport(runner.model, list(loads)), probe.backbone_state,
                          ckpt)
    assert runner.iter == 1 and len(probe.losses) == 1
    assert math.isfinite(probe.losses[0]), probe.losses
    assert probe.val_iters == 1 and probe.metrics, probe.metrics
    key = 'mIoU' if config in SEG_CONFIGS else 'coco/bbox_mAP'
    assert key in probe.metrics, probe.metrics


def _assert_clean_backbone_load(log, config, ckpt):
    assert 'do not match exactly' not in log, log[-6000:]
    assert 'missing keys in source state_dict' not in log
    assert 'unexpected key in source state_dict' not in log
    assert f'from path: {ckpt}' in log  # the checkpoint was read
    if kind_of(config) == 'r50':
        assert f'load backbone. in model from: {ckpt}' in log
    else:
        assert 'Load pre-trained model for PyramidVisionTransformerV2' in log


@pytest.mark.parametrize('config', SUBPROCESS_CONFIGS, ids=cid)
def test_tools_train_and_test_run_downstream_config(config, rm_ckpts, coco_root, ade_root,
                                                    tmp_path):
    """``python tools/train.py CONFIG --cfg-options ...``: the config's default_scope picks
    mmdet / mmseg; the backbone loads with no mismatch warning. For the mmseg one the saved
    checkpoint then goes through ``python tools/test.py``."""
    ckpt = primary_ckpt(rm_ckpts, config)
    cfg = Config.fromfile(str(REPO_ROOT / config))
    opts = tiny_options(cfg, config, coco_root, ade_root, ckpt)
    seg = config in SEG_CONFIGS
    if seg:  # keep the weights of the last iteration for tools/test.py
        opts.update({'default_hooks.checkpoint.save_last': True,
                     'default_hooks.checkpoint.save_optimizer': False})
    work_dir = tmp_path / 'work'
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', str(work_dir),
           '--cfg-options', *as_cli(opts)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    _assert_clean_backbone_load(log, config, ckpt)
    assert 'Iter(train) [1/1]' in log or 'Epoch(train) [1][1/1]' in log, log[-4000:]
    metric = 'mIoU' if seg else 'coco/bbox_mAP'
    assert metric in log, log[-4000:]
    if not seg:
        return
    trained = work_dir / 'iter_1.pth'
    assert trained.is_file(), sorted(p.name for p in work_dir.iterdir())
    metrics_json = tmp_path / 'metrics.json'
    cmd = [sys.executable, 'tools/test.py', config, str(trained), '--work-dir',
           str(tmp_path / 'test'), '--out', str(metrics_json), '--out-item', 'metrics',
           '--cfg-options', *as_cli({k: v for k, v in opts.items() if 'test_' in k})]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'Iter(test) [1/1]' in log and 'mIoU:' in log, log[-4000:]
    # --out with --out-item metrics is a metrics file for mmseg too, not a prediction folder
    assert 'mIoU' in json.loads(metrics_json.read_text())


def test_dist_train_sh_two_cpu_processes(rm_ckpts, coco_root, ade_root, tmp_path):
    """``tools/dist_train.sh CONFIG 2``: two CPU processes over gloo. mmseg's configs use
    SyncBN, which has no CPU kernels: the tools switch it to BN by themselves."""
    config = 'configs/downstream/mmseg/upernet_pvtv2-b1_4xb4-80k_ade20k-512x512.py'
    ckpt = primary_ckpt(rm_ckpts, config)
    cfg = Config.fromfile(str(REPO_ROOT / config))
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    opts = tiny_options(cfg, config, coco_root, ade_root, ckpt)
    cmd = ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path / 'work'),
           '--cfg-options', *as_cli(opts)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=tool_env(PORT=find_free_port()),
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    _assert_clean_backbone_load(log, config, ckpt)
    assert 'SyncBN needs CUDA' in log
    assert 'Iter(train) [1/1]' in log and 'mIoU' in log, log[-4000:]
