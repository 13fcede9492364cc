"""What a network sees of the pasted history (mmrm.analysis.history_boxes, the ranking study's
P2): the box alone is the nearest resize of each image at the centre of a canvas of the fill,
exact pixels; the accuracy by side of a model that reads one known pixel, by hand."""
import torch
import torch.nn.functional as F

from mmrm.analysis.history_boxes import box_alone, history_box_accuracy
from mmrm.experiments.history_probe import format_probe


def test_the_box_alone_is_the_nearest_resize_at_the_centre():
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    out = box_alone(images, 3, torch.tensor([-1.]))
    want = F.interpolate(images, size=(3, 3), mode='nearest')
    assert torch.equal(out[:, :, 2:5, 2:5], want)  # (8 - 3) // 2 = 2
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[2:5, 2:5] = False
    assert (out[:, :, mask] == -1).all()
    assert torch.equal(box_alone(images, 8, torch.tensor([0.])), images)


class _CentrePixel(torch.nn.Module):
    """Predicts class 1 when the centre pixel is positive, else class 0; its data
    preprocessor hands the batch through."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = lambda batch, training: batch

    def forward(self, x, mode='tensor'):
        c = x[:, 0, x.shape[2] // 2, x.shape[3] // 2]
        return torch.stack([-c, c], 1)


def test_accuracy_by_side_by_hand():
    class Sample:
        def __init__(self, label):
            self.gt_label = torch.tensor([label])
    # image 0: a positive blob in the centre (class 1); image 1: negative everywhere (class 0)
    images = -torch.ones(2, 1, 10, 10)
    images[0, :, 3:7, 3:7] = 1.
    batch = dict(inputs=images, data_samples=[Sample(1), Sample(0)])
    acc = history_box_accuracy(_CentrePixel(), [batch], sides=(0.1, 0.5))
    # side 1 (0.1): image 0 shrinks to its corner pixel (-1) at (4, 4); the centre pixel (5, 5)
    # is the fill 0 -> class 0 for both: 50 %; side 5 (0.5): the centre reads the blob: 100 %
    assert acc == {'0.1': 50., '0.5': 100., '1.0': 100.}


def test_the_probe_table_by_hand():
    result = dict(relative_sides=[0.5], rows=[
        dict(image_size=28, accuracy={'0.5': 10., '1.0': 80.}),
        dict(image_size=28, accuracy={'0.5': 12., '1.0': 78.}),
        dict(image_size=56, accuracy={'0.5': 40., '1.0': 81.})])
    table = format_probe(result)
    assert '| 0.5 (14 / 28 px) | 11.0 ± 1.4 (2) | 40.0 ± 0.0 (1) |' in table
    assert '| whole image | 79.0 ± 1.4 (2) | 81.0 ± 0.0 (1) |' in table
