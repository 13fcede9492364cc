# PSPNet (paper Table 9) on the Fashion-MNIST canvases, offline:
# ../mmseg/pspnet_r50-d8_8xb2-80k_ade20k-512x512.py with what the data forces changed
# (_base_/canvas.py): dataset (background + 10 classes), image scale (64 px canvases and crops),
# schedule, the evaluator (IoUMetric with each class's IoU beside its means), and the widths of
# the network pretrained on Fashion-MNIST (its stride-8 last stage takes the place of the dilated
# ResNet-50's).
_base_ = ['../mmseg/pspnet_r50-d8_8xb2-80k_ade20k-512x512.py', './_base_/canvas.py']

model = dict(
    data_preprocessor={{_base_.canvas_seg_data_preprocessor}},
    backbone={{_base_.canvas_seg_backbone}},
    decode_head=dict(in_channels=128, channels=32, num_classes=11),
    auxiliary_head=dict(in_channels=64, channels=16, num_classes=11))

train_dataloader = dict(batch_size=8, num_workers=2, dataset={{_base_.canvas_seg_train_dataset}})
val_dataloader = dict(batch_size=8, num_workers=2, dataset={{_base_.canvas_seg_val_dataset}})
test_dataloader = dict(batch_size=8, num_workers=2, dataset={{_base_.canvas_seg_test_dataset}})
val_evaluator = {{_base_.canvas_seg_evaluator}}
test_evaluator = {{_base_.canvas_seg_evaluator}}
custom_imports = {{_base_.canvas_seg_imports}}

train_cfg = dict(max_iters={{_base_.canvas_seg_iters}}, val_interval={{_base_.canvas_seg_iters}})
param_scheduler = {{_base_.canvas_seg_param_scheduler}}
optim_wrapper = dict(
    optimizer=dict(lr={{_base_.canvas_seg_lr}}), paramwise_cfg={{_base_.canvas_seg_paramwise_cfg}})
default_hooks = dict(
    checkpoint=dict(interval={{_base_.canvas_seg_iters}}, max_keep_ckpts=1),
    logger=dict(interval=25))
