"""What a trained network sees of the history RM pastes: its accuracy on images shrunk into a
box, alone (the ranking study's P2, ``docs/en/results/ranking.md``).

RM resize-fills the whole previous image into a box of side ``sqrt(lam)`` of the image side
(``lam < alpha = 0.5``). For a relative side ``r``, every test image is resized into an
``s x s`` box, ``s = max(1, int(r * H))`` (``int`` as RM's box, nearest as RM's default
``interpolation``, :func:`torch.nn.functional.interpolate`), pasted at the centre of an image
of the dataset's mean (0 after normalisation), and classified by the main head (the deployed
model). Accuracy by ``r`` says how much of the class survives the shrinking at that image size.
"""
import glob
import os.path as osp
import re
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ['RELATIVE_SIDES', 'box_alone', 'history_box_accuracy', 'last_checkpoint',
           'probe_work_dir']

#: the relative box sides measured (RM's boxes: up to sqrt(0.5) = 0.71 of the side)
RELATIVE_SIDES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def box_alone(images: torch.Tensor, side: int, fill: torch.Tensor) -> torch.Tensor:
    """``images`` ``(N, C, H, W)`` (float, normalised) nearest-resized to ``side x side`` and
    pasted at the centre of an ``(N, C, H, W)`` canvas of ``fill`` (``(C,)``)."""
    n, c, h, w = images.shape
    out = fill.view(1, c, 1, 1).expand(n, c, h, w).clone()
    small = F.interpolate(images, size=(side, side), mode='nearest')
    y, x = (h - side) // 2, (w - side) // 2
    out[:, :, y:y + side, x:x + side] = small
    return out


@torch.no_grad()
def history_box_accuracy(model: torch.nn.Module, loader,
                         sides: Sequence[float] = RELATIVE_SIDES) -> Dict[str, float]:
    """Top-1 accuracy (%) of ``model``'s main head on each ``loader`` batch shrunk into a
    centred box of every relative side in ``sides`` (``'1.0'``: the images as they are), the
    batches normalised by the model's own data preprocessor."""
    model.eval()
    correct = {f'{r:.1f}': 0 for r in (*sides, 1.0)}
    total = 0
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        labels = torch.cat([s.gt_label for s in samples]).to(inputs.device)
        fill = torch.zeros(inputs.shape[1], dtype=inputs.dtype, device=inputs.device)
        h = inputs.shape[-2]
        for r in (*sides, 1.0):
            x = inputs if r == 1.0 else box_alone(inputs, max(1, int(r * h)), fill)
            logits = model(x, mode='tensor')
            logits = logits[-1] if isinstance(logits, (list, tuple)) else logits
            correct[f'{r:.1f}'] += int((logits.argmax(1) == labels).sum())
        total += len(labels)
    return {k: 100. * v / total for k, v in correct.items()}


def last_checkpoint(work_dir: str) -> str:
    """The ``epoch_<N>.pth`` of the highest ``N`` in ``work_dir``."""
    found = glob.glob(osp.join(work_dir, 'epoch_*.pth'))
    if not found:
        raise FileNotFoundError(f'no epoch_*.pth in {work_dir}')
    return max(found, key=lambda p: int(re.search(r'epoch_(\d+)\.pth$', p).group(1)))


def probe_work_dir(work_dir: str, cfg_options: Optional[dict] = None,
                   batch_size: int = 500) -> Dict:
    """:func:`history_box_accuracy` of a finished training (its dumped config and last
    ``epoch_*.pth``) on its config's test split, at the config's own image size."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint
    from mmpretrain.registry import MODELS

    from mmrm.experiments.work_dirs import work_dir_config
    from mmrm.utils.config import model_config, to_plain
    cfg = Config.fromfile(work_dir_config(work_dir))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(model_config(cfg))
    ckpt = last_checkpoint(work_dir)
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    loader_cfg = to_plain(cfg['test_dataloader'])
    loader_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    size = loader.dataset.get_data_info(0)['img'].shape[0]
    return dict(checkpoint=osp.basename(ckpt), seed=cfg.get('randomness', {}).get('seed'),
                image_size=int(size), accuracy=history_box_accuracy(model, loader))
