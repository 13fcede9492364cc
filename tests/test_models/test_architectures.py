"""RecursiveMix on every MMPretrain architecture family (issue #10).

Each family starts from MMPretrain 1.2's OWN model config (``_base_/models/*.py`` shipped in the
package), made tiny through its documented arguments (custom ``arch`` dicts, widths, input
size), with only the model type switched to ``RMClassifier`` (plus the RM augment and head, soft
targets). For each family:

* two RM training steps through the real ``data_preprocessor`` + ``loss`` path: every
  parameter gets a gradient, ``loss_rm`` is finite and non-zero on the second step;
* the RoI branch reads exactly the map the main path pools: with the box covering the whole
  input, the 1x1 RoIAlign (plus the post-pool transform) equals the pooled feature of the main
  path (the global average of the same map samples every cell centre once); for
  Inception-v3, whose backbone pools and classifies itself, its classifier on the whole box
  gives the main logits;
* it reads that map in the right layout: the tapped tensor replaced by a position-coded one
  (row, column, row-major index per channel; class tokens coded far off) in the network's own
  layout, on a non-square input where the family takes one, a partial asymmetric box pools to
  the code at its centre, so a transposed grid, another factorisation of a token sequence or a
  shifted token offset fails;
* deploy: ``convert_rm_checkpoint`` of the trained RM model loads strictly (0 missing / 0
  unexpected keys) into the model built from the original config, with the same logits.
"""
import copy
import os.path as osp

import mmpretrain
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmrm  # noqa: F401
from mmrm.models.utils import PoolingInputTap, StageOutputTap, TokenTap
from mmrm.utils import convert_rm_checkpoint

BASE = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', '_base_', 'models')
K = 5  # classes

# family: (mmpretrain base config, overrides of model (deep-merged), input side, tap kind)
FAMILIES = {
    'ResNet': ('resnet18.py', dict(backbone=dict(stem_channels=8, base_channels=8)), 32,
               PoolingInputTap),
    'ResNeXt': ('resnext50_32x4d.py', dict(backbone=dict(
        depth=50, groups=2, width_per_group=4, stem_channels=8, base_channels=8)), 32,
        PoolingInputTap),
    'SE-ResNet': ('seresnet50.py', dict(backbone=dict(stem_channels=8, base_channels=8)), 32,
                  PoolingInputTap),
    'Res2Net': ('res2net50-w14-s8.py', dict(backbone=dict(
        scales=2, base_width=4, stem_channels=8, base_channels=8)), 32, PoolingInputTap),
    'ResNeSt': ('resnest50.py', dict(backbone=dict(stem_channels=8, base_channels=8),
                                     head=dict(loss=dict(num_classes=K))), 32,
                PoolingInputTap),
    'RegNet': ('regnet/regnetx_400mf.py', {}, 32, PoolingInputTap),
    'EfficientNet': ('efficientnet_b0.py', {}, 32, PoolingInputTap),
    'MobileNetV2': ('mobilenet_v2_1x.py', dict(backbone=dict(widen_factor=0.25)), 32,
                    PoolingInputTap),
    'MobileNetV3': ('mobilenet_v3/mobilenet_v3_large_imagenet.py',
                    dict(head=dict(mid_channels=[32])), 32, PoolingInputTap),
    'MobileOne': ('mobileone/mobileone_s0.py', {}, 32, PoolingInputTap),
    'DenseNet': ('densenet/densenet121.py', dict(backbone=dict(arch=dict(
        growth_rate=8, depths=(1, 1, 1, 1), init_channels=16))), 32, PoolingInputTap),
    'ShuffleNetV2': ('shufflenet_v2_1x.py', dict(backbone=dict(widen_factor=0.5)), 32,
                     PoolingInputTap),
    'Swin': ('swin_transformer/tiny_224.py', dict(backbone=dict(
        arch=dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2]), img_size=64,
        window_size=2, drop_path_rate=0.)), 64, PoolingInputTap),
    'PoolFormer': ('poolformer/poolformer_s12.py', dict(backbone=dict(arch=dict(
        layers=[1, 1, 1, 1], embed_dims=[8, 16, 24, 32], mlp_ratios=[2, 2, 2, 2],
        layer_scale_init_value=1e-5), drop_path_rate=0.)), 32, PoolingInputTap),
    'HRNet': ('hrnet/hrnet-w18.py', {}, 32, PoolingInputTap),
    # (mmpretrain 1.2's LeViT refuses every custom arch dict: its key check and its reads
    # disagree, so the smallest zoo arch)
    # (128 px: its last map is 2 x 2, a box inside it can be partial)
    'LeViT': ('levit-256-p16.py', dict(backbone=dict(arch='128s', img_size=128),
                                       head=dict(distillation=False)), 128, PoolingInputTap),
    'EfficientFormer': ('efficientformer-l1.py', dict(backbone=dict(arch=dict(
        layers=[1, 1, 1, 2], embed_dims=[8, 16, 24, 32], downsamples=[False, True, True, True],
        vit_num=1)), head=dict(distillation=False)), 224, PoolingInputTap),
    'Inception-v3': ('inception_v3.py', {}, 75, PoolingInputTap),
    'ConvNeXt': ('convnext/convnext-tiny.py', dict(backbone=dict(
        arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]), drop_path_rate=0.)), 32,
        StageOutputTap),
    'ConvNeXt-V2': ('convnext_v2/atto.py', dict(backbone=dict(
        arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]), drop_path_rate=0.)), 32,
        StageOutputTap),
    'EdgeNeXt': ('edgenext/edgenext-xxsmall.py', dict(backbone=dict(
        arch=dict(channels=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[2, 2, 2, 2]),
        drop_path_rate=0.)), 64, StageOutputTap),
    'TinyViT': ('tinyvit/tinyvit-5m.py', dict(backbone=dict(
        arch=dict(channels=[16, 16, 32, 32], num_heads=[1, 1, 2, 2], depths=[1, 1, 1, 1]),
        img_size=(64, 64), window_size=[2, 2, 2, 2])), 64, StageOutputTap),
    'ViT': ('vit-base-p16.py', dict(backbone=dict(
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=32, patch_size=8, drop_rate=0.)), 32, TokenTap),
    'DeiT-3': ('deit3/deit3-small-p16-224.py', dict(backbone=dict(
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=32, patch_size=8, drop_path_rate=0.)), 32, TokenTap),
}


# the input of the position-coded check: non-square where the family takes any size, each
# side a multiple of the map's stride and at least two cells; and, for maps handed over as a
# token sequence, its TRUE layout (from the architecture, not from the grid inference under
# test): (layout, stride, leading class / distillation tokens)
CODED_INPUT = {family: (64, 96) for family in FAMILIES}
CODED_INPUT.update({'LeViT': (128, 128), 'EfficientFormer': (224, 224), 'TinyViT': (64, 96),
                    'Inception-v3': (139, 171), 'ViT': (32, 48), 'DeiT-3': (32, 48)})
# TinyViT fixes its token grid when built (img_size): its coded check runs on a model built for
# the non-square input, so that its inferred (2, 3) grid transposed or re-factored shows.
# (EfficientFormer's token grid is 7 x 7 whatever is done: its attention biases are built for
# resolution 7, so only square grids run, and there a transposed grid is the same grid.)
CODED_BUILD = {'TinyViT': dict(backbone=dict(img_size=CODED_INPUT['TinyViT']))}
TOKEN_LAYOUT = {'EfficientFormer': ('ncl', 32, 0), 'TinyViT': ('nlc', 32, 0),
                'ViT': ('nlc', 8, 1), 'DeiT-3': ('nlc', 8, 1)}


def position_code(channels, grid):
    """(C, h, w): channel 0 the row, 1 the column, 2 the row-major position, the others
    constants. Linear in (row, column), so ANY bilinear RoIAlign of a box inside the map is the
    code at the box centre (symmetric samples); a transposed grid, another factorisation or a
    shifted token order give other values."""
    gh, gw = grid
    y, x = torch.meshgrid(torch.arange(gh, dtype=torch.float32),
                          torch.arange(gw, dtype=torch.float32), indexing='ij')
    rest = (torch.arange(3, channels, dtype=torch.float32) % 7 / 10)[:, None, None]
    return torch.cat([torch.stack([y, x, y * gw + x]), rest.expand(-1, gh, gw)])


def coded_like(real, family, input_hw):
    """A position-coded tensor with ``real``'s shape, in the network's own layout; (its grid,
    its code (C, h, w))."""
    layout, stride, extra = TOKEN_LAYOUT.get(family, ('nchw', None, 0))
    if layout == 'nchw':
        grid = tuple(real.shape[-2:])
        code = position_code(real.size(1), grid)
        return code.expand_as(real).to(real).clone(), grid, code
    grid = (input_hw[0] // stride, input_hw[1] // stride)
    channels = real.size(1) if layout == 'ncl' else real.size(2)
    code = position_code(channels, grid)
    flat = code.reshape(channels, -1)  # row-major positions
    if layout == 'ncl':
        out = flat
    else:  # class tokens first, coded far off so that reading one shows
        out = torch.cat([torch.full((extra, channels), 1000.), flat.T])
    assert out.shape == real.shape[1:], (family, out.shape, real.shape)
    return out.expand_as(real).to(real).clone(), grid, code


def inject(tap, make):
    """Replace the tapped tensor by ``make(tensor)`` in the forward (a hook put before the
    tap's own, which is registered when the model is built, so the tap records the
    replacement)."""
    if isinstance(tap, PoolingInputTap):
        def pre(module, args):
            x = args[0]
            if isinstance(x, (tuple, list)):
                return (type(x)([*x[:-1], make(x[-1])]), *args[1:])
            return (make(x), *args[1:])
        return tap.module.register_forward_pre_hook(pre, prepend=True)
    module = tap.stage if isinstance(tap, StageOutputTap) else tap.token_module
    return module.register_forward_hook(lambda m, args, out: make(out), prepend=True)


def check_partial_box_on_coded_map(model, family):
    """The RoI branch pools a partial, asymmetric box of a position-coded map: the pooled
    feature is the code at the box centre, in the map's cells."""
    h_in, w_in = CODED_INPUT[family]
    made = {}

    def make(real):
        out, made['grid'], made['code'] = coded_like(real, family, (h_in, w_in))
        return out

    x = torch.rand(2, 3, h_in, w_in) * 2 - 1
    handle = inject(model.feature_tap, make)
    try:
        with torch.no_grad(), model.feature_tap.capture((h_in, w_in)) as found:
            model.extract_feat(x)
    finally:
        handle.remove()
    gh, gw = made['grid']
    assert gh >= 2 and gw >= 2, (family, made['grid'])
    # a box in map coordinates (cell centres at integers), partial and asymmetric: rows
    # [0, (h-1)/2], columns [(w-1)/3, w-1]; in input pixels via the map's stride per axis
    fy, fx = (0., (gh - 1) / 2), ((gw - 1) / 3, gw - 1.)
    box = ((fx[0] + .5) * w_in / gw, (fy[0] + .5) * h_in / gh,
           (fx[1] + .5) * w_in / gw, (fy[1] + .5) * h_in / gh)
    with torch.no_grad():
        pooled = model.roi_head.pool(found.map, box, (h_in, w_in))
        yc, xc = sum(fy) / 2, sum(fx) / 2
        expect = made['code'][:, 0, 0].clone()
        expect[:3] = torch.tensor([yc, xc, yc * gw + xc])
        if found.post_pool is not None:
            pooled, expect = found.post_pool(pooled), found.post_pool(expect[None])[0]
    torch.testing.assert_close(pooled, expect.expand_as(pooled), rtol=1e-4, atol=1e-4,
                               msg=f'{family}: grid {made["grid"]}')


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and 'arch' != key:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def original_model_cfg(family: str) -> dict:
    """The family's mmpretrain model config, tiny, K classes, head width measured."""
    path, overrides, side, _ = FAMILIES[family]
    model = merge(Config.fromfile(osp.join(BASE, path)).to_dict()['model'], overrides)
    model.pop('train_cfg', None)  # mmpretrain's own Mixup/CutMix recipe, not RM's
    model['data_preprocessor'] = dict(num_classes=K, mean=[0.] * 3, std=[1.] * 3)
    head = model['head']
    if head['type'] == 'ClsHead':  # Inception-v3: the backbone classifies, the head has no layer
        model['backbone']['num_classes'] = K
    else:
        head['num_classes'] = K
    if 'in_channels' in head:  # the width the head receives, measured on the tiny network
        probe = MODELS.build(dict(type='ImageClassifier', backbone=model['backbone'],
                                  neck=model.get('neck'))).eval()
        with torch.no_grad():
            feats = probe.extract_feat(torch.zeros(1, 3, side, side))
        last = feats[-1] if isinstance(feats, (tuple, list)) else feats
        head['in_channels'] = last.shape[1]
    return model


def rm_model_cfg(family: str) -> dict:
    model = original_model_cfg(family)
    model['type'] = 'RMClassifier'
    model['roi_head'] = dict(type='RoIConsistencyHead', omega=0.5)
    model['train_cfg'] = dict(augments=dict(type='RecursiveMixBatchAugment', alpha=0.5))
    loss = model['head'].get('loss', {})
    if loss.get('type') == 'CrossEntropyLoss':
        loss['use_soft'] = True
    return model


def batch(side: int, n: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=torch.rand(n, 3, side, side, generator=g) * 255,
                data_samples=[DataSample().set_gt_label(int(v))
                              for v in torch.randint(0, K, (n, ), generator=g)])


@pytest.fixture(autouse=True)
def quiet():
    MessageHub.get_current_instance().runtime_info.pop('epoch', None)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_rm_trains_every_family_and_deploys_as_the_original(family, tmp_path):
    torch.manual_seed(0)
    side, tap_kind = FAMILIES[family][2], FAMILIES[family][3]
    model = MODELS.build(rm_model_cfg(family))
    model.init_weights()
    model.train()
    assert isinstance(model.feature_tap, tap_kind), model.feature_tap.describe()
    pre = model.data_preprocessor
    box = (side // 8, side // 4, side // 8 + side // 2, side // 4 + side // 2)
    pre.rm_augment.sample_box = lambda h, w: box  # a real paste at step 2
    for step in range(2):
        model.zero_grad()
        data = pre(batch(side, seed=step), True)
        losses = model.loss(**data)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        sum(losses.values()).backward()
    assert data['rm_mix'].lam > 0 and losses['loss_rm'].item() > 0
    # RM leaves no parameter out of the graph (DDP needs no find_unused_parameters): the only
    # ones without a gradient are those the original model's own training step never uses
    # (DeiT-3's ln2, which mmpretrain's DeiT3 layer skips)
    no_grad = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    assert no_grad == _unused_by_the_original(family, side), no_grad

    # the RoI branch reads the map the main path pools: the whole-image box == the pool
    model.eval()
    seen = {}
    head_hook = model.head.register_forward_pre_hook(
        lambda m, args: seen.__setitem__('head_in', args[0]))
    x = pre(batch(side, seed=5), False)['inputs']
    with torch.no_grad(), model.feature_tap.capture((side, side)) as found:
        logits = model.head(model.extract_feat(x))
    head_hook.remove()
    whole = model.roi_head.pool(found.map, (0, 0, side, side), (side, side))
    if found.post_pool is not None:
        whole = found.post_pool(whole)
    tap = model.feature_tap
    if isinstance(tap, PoolingInputTap) and tap.name.startswith('backbone.'):
        # Inception-v3: the backbone pools and classifies itself, the head sees its logits:
        # its classifier (dropout is the identity in eval) on the whole box gives them
        fc = model.get_submodule(model._final_linear_name)
        with torch.no_grad():
            torch.testing.assert_close(fc(whole), logits, rtol=1e-4, atol=1e-5)
    else:
        pooled = _main_path_pooled(model, found, seen['head_in'])
        torch.testing.assert_close(whole, pooled, rtol=1e-4, atol=1e-5)
    # ... and reads it in the right layout: a partial box of a position-coded map
    coded = model
    if family in CODED_BUILD:
        coded = MODELS.build(merge(rm_model_cfg(family), CODED_BUILD[family])).eval()
    check_partial_box_on_coded_map(coded, family)

    # deploy: the original config's model, strictly, same logits
    converted, dropped = convert_rm_checkpoint(dict(state_dict=model.state_dict()))
    assert dropped and all(k.startswith('roi_head.') for k in dropped)
    plain = MODELS.build(original_model_cfg(family)).eval()
    result = plain.load_state_dict(converted['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        torch.testing.assert_close(plain(x, mode='tensor'), logits, rtol=1e-5, atol=1e-5)


def _unused_by_the_original(family, side):
    plain = MODELS.build(original_model_cfg(family)).train()
    plain.loss(**plain.data_preprocessor(batch(side), True))['loss'].backward()
    return {n for n, p in plain.named_parameters() if p.requires_grad and p.grad is None}


def _main_path_pooled(model, found, head_in):
    """The feature the main path pooled from the tapped map, however the family pools."""
    tap = model.feature_tap
    feats = head_in[-1] if isinstance(head_in, (tuple, list)) else head_in
    if isinstance(tap, TokenTap) and tap.ln2 is None:
        # the head sees the class token; the same backbone asked for its patch-token map
        # ('featmap': tokens after the final norm, class tokens dropped, on the patch grid)
        # gives the map whose average the whole box must be
        backbone = model.backbone
        backbone.out_type = 'featmap'
        try:
            with torch.no_grad():
                fmap = backbone(model.data_preprocessor(batch(found.map.grid_hw[0] * 8,
                                                              seed=5), False)['inputs'])[-1]
        finally:
            backbone.out_type = 'cls_token'
        return fmap.mean((2, 3))
    return feats.flatten(1)
