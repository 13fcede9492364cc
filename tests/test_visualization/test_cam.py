"""Plain CAM (Zhou et al. 2016) equals ``fc weights x last feature map``."""
import pytest
import torch
import torch.nn.functional as F

from mmrm.analysis.variants import build_model
from mmrm.utils import load_config, model_config
from mmrm.visualization.cam import class_activation_maps


def test_cam_equals_fc_weights_times_feature_map(tiny_rm):
    cfg = load_config(tiny_rm['rm_path'])
    model = build_model(model_config(cfg)).eval()
    x = torch.randn(2, 3, 96, 96)  # a 3x3 last map
    cams, cls, probs = class_activation_maps(model, x, target=[1, 2])
    fmap = model.backbone(x)[-1]
    assert fmap.shape[-2:] == (3, 3)
    w = model.head.fc.weight
    for i, k in enumerate([1, 2]):
        raw = (w[k].view(-1, 1, 1) * fmap[i]).sum(0)
        up = F.interpolate(raw[None, None], size=(96, 96), mode='bilinear')[0, 0]
        expect = (up - up.min()) / (up.max() - up.min())
        assert torch.allclose(cams[i], expect.detach(), atol=1e-5)
    assert cls == [1, 2]
    # default target: the prediction of the plain inference path
    _, pred, p = class_activation_maps(model, x)
    logits = model(x, mode='tensor')
    assert pred == logits.argmax(1).tolist()
    assert p == pytest.approx(logits.softmax(1).max(1)[0].tolist(), abs=1e-5)
