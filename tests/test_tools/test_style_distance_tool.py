"""tools/analysis_tools/style_distance_matrix.py: per-class mean AdaIN style vectors and their
mean squared differences, checked against a per-image hand computation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.utils import load_tool, tiny_cls_config, write_config


def test_style_distance_matrix(tiny_image_folder, tmp_path):
    from mmrm.models.batch_augments.adain import AdaINStyleTransfer
    torch.manual_seed(0)
    net = AdaINStyleTransfer(None, None, random_init=True)
    torch.save(net.encoder.state_dict(), tmp_path / 'vgg.pth')
    torch.save(net.decoder.state_dict(), tmp_path / 'dec.pth')
    cfg = tiny_cls_config(tiny_image_folder, num_classes=2, batch_size=8)
    cfg['model']['train_cfg'] = dict(augments=dict(
        type='StyleCutMix', encoder_checkpoint=str(tmp_path / 'vgg.pth'),
        decoder_checkpoint=str(tmp_path / 'dec.pth'), style_distance=[[0, 1], [1, 0]],
        style_size=16))
    path = write_config(cfg, tmp_path / 'style.py')
    out = tmp_path / 'dist.pt'
    tool = load_tool('tools/analysis_tools/style_distance_matrix.py')
    tool.main([path, '--out', str(out), '--max-batches', '1', '--device', 'cpu'])
    matrix = torch.load(out)
    assert matrix.shape == (2, 2) and torch.all(matrix.diagonal() == 0)
    # by hand: the 8 images one by one, normalised as the config does, 16 pixels
    from PIL import Image
    pre = cfg['model']['data_preprocessor']
    mean = torch.tensor(pre['mean']).view(3, 1, 1)
    std = torch.tensor(pre['std']).view(3, 1, 1)
    vectors = {0: [], 1: []}
    for k in (0, 1):
        for i in range(4):
            img = Image.open(f'{tiny_image_folder}/class_{k}/img_{i:03d}.png').convert('RGB')
            x = (torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) -
                 mean) / std
            vectors[k].append(net.style_vector(x[None])[0])
    m0, m1 = (torch.stack(vectors[k]).mean(0) for k in (0, 1))
    expected = F.mse_loss(m0, m1)
    assert matrix[0, 1] == pytest.approx(float(expected), rel=1e-4)
    assert matrix[1, 0] == matrix[0, 1]
