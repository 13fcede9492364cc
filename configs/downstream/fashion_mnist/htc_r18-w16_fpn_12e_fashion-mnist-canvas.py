# HTC (paper Table 8) on the Fashion-MNIST canvases, offline: ../mmdet/htc_r50_fpn_1x_coco.py with
# what the data forces changed (_base_/canvas.py): dataset (the canvases' label maps feed the
# semantic branch: background + 10 classes), image scale (pyramid strides and the RoI level scale
# / 4; proposals / 5 and RoI samples 512 -> 64 per image and stage, as for Mask R-CNN), classes,
# schedule, and the widths of the network pretrained on Fashion-MNIST. The three cascade stages
# are mmdet's (their box coder stds, IoU thresholds, class-agnostic regression, mask information
# flow); only their widths, class counts and RoI samples differ.
_base_ = ['../mmdet/htc_r50_fpn_1x_coco.py', './_base_/canvas.py']

htc_stage_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
htc_mask_head = dict(type='HTCMaskHead', num_convs=4, in_channels=64, conv_out_channels=64,
                     num_classes=10,
                     loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))
model = dict(
    data_preprocessor={{_base_.canvas_det_data_preprocessor}},
    backbone={{_base_.canvas_det_backbone}},
    neck=dict(in_channels={{_base_.canvas_widths}}, out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(strides=[1, 2, 4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[1, 2, 4, 8], finest_scale=14),
        bbox_head=[
            dict(type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=256, roi_feat_size=7,
                 num_classes=10, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=stds),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in htc_stage_stds
        ],
        mask_roi_extractor=dict(out_channels=64, featmap_strides=[1, 2, 4, 8], finest_scale=14),
        mask_head=[dict(htc_mask_head, with_conv_res=False), htc_mask_head, htc_mask_head],
        semantic_roi_extractor=dict(out_channels=64, featmap_strides=[2]),
        semantic_head=dict(in_channels=64, conv_out_channels=64, num_classes=11,
                           seg_scale_factor=1 / 2)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=400, max_per_img=400),
        rcnn=[
            dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                               min_pos_iou=iou, ignore_iof_thr=-1),
                 sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                              add_gt_as_proposals=True),
                 mask_size=28, pos_weight=-1, debug=False)
            for iou in (0.5, 0.6, 0.7)
        ]),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=200)))

train_dataloader = dict(batch_size=8, dataset={{_base_.canvas_htc_train_dataset}})
val_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_val_dataset}})
test_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_test_dataset}})
val_evaluator = {{_base_.canvas_det_val_evaluator}}
test_evaluator = {{_base_.canvas_det_test_evaluator}}

train_cfg = dict(max_epochs={{_base_.canvas_det_epochs}}, val_interval={{_base_.canvas_det_epochs}})
param_scheduler = {{_base_.canvas_det_param_scheduler}}
optim_wrapper = dict(optimizer=dict(lr={{_base_.canvas_det_lr}}))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1), logger=dict(interval=25))
