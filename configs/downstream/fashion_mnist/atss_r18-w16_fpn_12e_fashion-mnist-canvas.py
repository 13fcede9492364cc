# ATSS (paper Table 7) on the Fashion-MNIST canvases, offline: ../mmdet/atss_r50_fpn_1x_coco.py
# with what the data forces changed (_base_/canvas.py): dataset, image scale (pyramid strides / 4),
# classes, schedule, and the widths of the network pretrained on Fashion-MNIST.
_base_ = ['../mmdet/atss_r50_fpn_1x_coco.py', './_base_/canvas.py']

model = dict(
    data_preprocessor={{_base_.canvas_det_data_preprocessor}},
    backbone={{_base_.canvas_det_backbone}},
    neck=dict(in_channels={{_base_.canvas_widths}}, out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64,
                   anchor_generator=dict(strides=[2, 4, 8, 16, 32])))

train_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_train_dataset}})
val_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_val_dataset}})
test_dataloader = dict(batch_size=8, dataset={{_base_.canvas_det_test_dataset}})
val_evaluator = {{_base_.canvas_det_val_evaluator}}
test_evaluator = {{_base_.canvas_det_test_evaluator}}

train_cfg = dict(max_epochs={{_base_.canvas_det_epochs}}, val_interval={{_base_.canvas_det_epochs}})
param_scheduler = {{_base_.canvas_det_param_scheduler}}
optim_wrapper = dict(optimizer=dict(lr={{_base_.canvas_det_lr}}))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1), logger=dict(interval=25))
