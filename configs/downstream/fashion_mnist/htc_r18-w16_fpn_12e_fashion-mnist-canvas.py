# HTC (paper Table 8) on the Fashion-MNIST canvases, offline: ../mmdet/htc_r50_fpn_1x_coco.py with
# what the data forces changed (_base_/canvas.py): dataset, image scale (pyramid strides and the RoI
# level scale / 4), classes, schedule, and the widths of the network pretrained on Fashion-MNIST.
# It stays HTC: mmdet's three cascade stages (their box coder stds, IoU thresholds 0.5 / 0.6 / 0.7,
# class-agnostic regression) with interleaved box and mask branches and the mask information flow
# between the stages' mask heads.
# CPU-time cuts, not what the data forces. Measured as CPU seconds per training iteration (batch 8
# of canvases, one thread, median of 3 rounds of 3 iterations interleaved with Mask R-CNN's config,
# which took 1.0 s): the previous version of this config (semantic branch on, 4 mask convs, 64 RoI
# samples) 5.4 s = 5.2x Mask R-CNN; semantic branch off and 2 mask convs 2.2 s = 2.1x; and 32 RoI
# samples 1.6-1.7 s = 1.6x (this config).
# - proposals / 5 (as Mask R-CNN) and RoI samples 512 -> 32 per image and stage (Mask R-CNN: 64,
#   at one stage);
# - no semantic branch: mmdet's htc_r50_fpn_1x_coco has one (FusedSemanticHead on COCO-stuff label
#   maps, its features fused into the RoI features), HTC's optional third component; here it is
#   off (semantic_roi_extractor / semantic_head None), so HTC's train data needs no label maps;
# - 2 convs per mask head instead of 4 (three mask heads, each run again by the later stages for
#   the information flow: 6 mask-head passes per iteration against Mask R-CNN's one).
_base_ = ['../mmdet/htc_r50_fpn_1x_coco.py', './_base_/canvas.py']

htc_stage_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
htc_mask_head = dict(type='HTCMaskHead', num_convs=2, in_channels=64, conv_out_channels=64,
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
        semantic_roi_extractor=None,
        semantic_head=None),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=400, max_per_img=400),
        rcnn=[
            dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                               min_pos_iou=iou, ignore_iof_thr=-1),
                 sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                              add_gt_as_proposals=True),
                 mask_size=28, pos_weight=-1, debug=False)
            for iou in (0.5, 0.6, 0.7)
        ]),
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
