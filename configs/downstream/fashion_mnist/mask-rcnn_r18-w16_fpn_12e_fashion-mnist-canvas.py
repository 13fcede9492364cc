# Mask R-CNN (paper Table 8) on the Fashion-MNIST canvases, offline:
# ../mmdet/mask-rcnn_r50_fpn_1x_coco.py with what the data forces changed (_base_/canvas.py):
# dataset, image scale (pyramid strides and the RoI level scale / 4; proposals / 5 and RoI samples
# 512 -> 64 per image for a canvas of ~1/250 of a COCO image's area holding 2-3 objects: the RoI
# heads' CPU cost, mmcv's RoIAlign, bounds the chain's time), classes, schedule, and the widths of
# the network pretrained on Fashion-MNIST.
_base_ = ['../mmdet/mask-rcnn_r50_fpn_1x_coco.py', './_base_/canvas.py']

model = dict(
    data_preprocessor={{_base_.canvas_det_data_preprocessor}},
    backbone={{_base_.canvas_det_backbone}},
    neck=dict(in_channels={{_base_.canvas_widths}}, out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(strides=[1, 2, 4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[1, 2, 4, 8], finest_scale=14),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=10),
        mask_roi_extractor=dict(out_channels=64, featmap_strides=[1, 2, 4, 8], finest_scale=14),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=10)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=400, max_per_img=200),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=200)))

train_dataloader = dict(batch_size=8, dataset={{_base_.canvas_ins_train_dataset}})
val_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_val_dataset}})
test_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_test_dataset}})
val_evaluator = {{_base_.canvas_det_val_evaluator}}
test_evaluator = {{_base_.canvas_det_test_evaluator}}

train_cfg = dict(max_epochs={{_base_.canvas_det_epochs}}, val_interval={{_base_.canvas_det_epochs}})
param_scheduler = {{_base_.canvas_det_param_scheduler}}
optim_wrapper = dict(optimizer=dict(lr={{_base_.canvas_det_lr}}))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1), logger=dict(interval=25))
