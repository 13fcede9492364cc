# UperNet with a RecursiveMix-pretrained ResNet-50 (paper Table 9).
# mmseg's own upernet_r50_4xb4-80k_ade20k-512x512 config; only the backbone changes.
# Paper setting: ADE20K, 512x512 crops, 80k iterations; mmseg's standard hyper-parameters
# otherwise (4 GPUs x 4 images, SGD lr 0.01, poly decay).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'

custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)

# The RM (or baseline / CutMix) ImageNet classification checkpoint: the full training checkpoint
# (``backbone.*`` is picked by ``prefix``) or the output of
# ``tools/model_converters/rm2backbone.py`` (keeps the ``backbone.`` prefix by default).
# NOTE: ``--cfg-options checkpoint=...`` does NOT reach the backbone (this variable is substituted
# when the file is parsed); override ``model.backbone.init_cfg.checkpoint=PATH`` instead.
checkpoint = 'work_dirs/resnet50_8xb32_in1k_rm/epoch_300.pth'

model = dict(
    pretrained=None,  # mmseg's default is open-mmlab://resnet50_v1c
    backbone=dict(
        # plain ResNet-50 stem (keys == mmpretrain's ResNet); mmseg's default ResNetV1c has a
        # deep stem whose keys (stem.*) a classification ResNet-50 does not have. The rest
        # (output stride 32) is mmseg's.
        type='ResNet',
        depth=50,
        deep_stem=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
