"""The AdaIN style-transfer network (Huang and Belongie, "Arbitrary Style Transfer in Real-time
with Adaptive Instance Normalization", ICCV 2017) that StyleMix / StyleCutMix mix images with."""
import os.path as osp
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

WEIGHTS_HINT = (
    'the pretrained AdaIN weights of the StyleMix authors: vgg_normalised.pth (VGG-19 encoder) '
    'and decoder.pth.tar (decoder) from github.com/alsdml/StyleMix (its models/ folder; the same '
    "files as naoto0804/pytorch-AdaIN's release, where the decoder is decoder.pth)")


def _conv(cin: int, cout: int) -> List[nn.Module]:
    return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3)), nn.ReLU()]


def vgg_encoder() -> nn.Sequential:
    """The normalised VGG-19 up to relu4_1: the first 31 layers of the AdaIN ``vgg``, indexed
    as in ``vgg_normalised.pth`` (index 0 is a 1x1 conv that normalises the input)."""
    def pool():
        return [nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)]

    layers = [nn.Conv2d(3, 3, (1, 1))]
    layers += _conv(3, 64) + _conv(64, 64) + pool()  # relu1_1 (index 3), relu1_2
    layers += _conv(64, 128) + _conv(128, 128) + pool()  # relu2_1 (10), relu2_2
    layers += _conv(128, 256) + sum((_conv(256, 256) for _ in range(3)), []) + pool()  # relu3_1
    layers += _conv(256, 512)  # relu4_1 (index 30)
    return nn.Sequential(*layers)


def adain_decoder() -> nn.Sequential:
    """The AdaIN decoder: relu4_1 features (N, 512, h, w) -> image (N, 3, 8h, 8w)."""
    def up():
        return [nn.Upsample(scale_factor=2, mode='nearest')]

    layers = _conv(512, 256) + up() + sum((_conv(256, 256) for _ in range(3)), [])
    layers += _conv(256, 128) + up() + _conv(128, 128) + _conv(128, 64) + up() + _conv(64, 64)
    layers += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, (3, 3))]
    return nn.Sequential(*layers)


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel spatial mean and sqrt(unbiased var + eps), each (N, C, 1, 1)."""
    flat = feat.flatten(2)
    return (flat.mean(2)[..., None, None], flat.var(2).add(eps).sqrt()[..., None, None])


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    r"""AdaIN (Huang and Belongie, Eq. 8): :math:`\sigma(s) (c - \mu(c)) / \sigma(c) + \mu(s)`."""
    c_mean, c_std = mean_std(content)
    s_mean, s_std = mean_std(style)
    return (content - c_mean) / c_std * s_std + s_mean


def _read_weights(part: str, path: str, module: nn.Sequential) -> dict:
    """The state dict of ``module`` (a Sequential: keys ``<index>.weight`` / ``.bias``) from
    ``path``: a plain state dict as the authors' files, or one nested under ``state_dict`` /
    ``model`` or saved from a (Distributed)DataParallel wrapper (``module.`` prefixes). The
    encoder file holds the whole VGG-19: layers past relu4_1 are dropped. Anything else is an
    error naming the file and what it must hold."""
    def refuse(why):
        return ValueError(f'StyleCutMix: {part} weights {path!r} {why}; expected {WEIGHTS_HINT}, '
                          f'a state dict with keys like {list(module.state_dict())[:2]}')

    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # not a torch file, or pickled objects weights_only refuses
        raise refuse(f'cannot be read as a weights-only torch file ({exc})') from exc
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise refuse(f'holds a {type(state).__name__}, not a state dict of tensors')
    state = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state.items()}
    index = [k.split('.')[0] for k in state]
    if not all(i.isdigit() for i in index):
        raise refuse(f'has keys {sorted(k for k in state if not k.split(".")[0].isdigit())[:3]}'
                     ' that are not layers of the network')
    state = {k: v for k, v, i in zip(state, state.values(), index) if int(i) < len(module)}
    expected = module.state_dict()
    if set(state) != set(expected) or any(v.shape != expected[k].shape
                                          for k, v in state.items()):
        wrong = sorted(set(expected) ^ set(state)) or [
            f'{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}' for k, v in state.items()
            if v.shape != expected[k].shape]
        raise refuse(f'does not match the {part} ({wrong[:3]})')
    return state


class AdaINStyleTransfer(nn.Module):
    """Frozen VGG-19 encoder (to relu4_1) + AdaIN decoder.

    Args:
        encoder_checkpoint (str): ``vgg_normalised.pth`` (a state dict of the full AdaIN
            ``vgg``; the layers past relu4_1 are ignored).
        decoder_checkpoint (str): ``decoder.pth(.tar)`` (a state dict of the decoder).
        random_init (bool): build with random weights and read no file. For tests only: the
            style transfer is meaningless without the pretrained weights.
    """

    #: encoder layers after which relu1_1, relu2_1, relu3_1, relu4_1 come out
    STYLE_LAYERS = (3, 10, 17, 30)

    def __init__(self, encoder_checkpoint: Optional[str], decoder_checkpoint: Optional[str],
                 random_init: bool = False):
        super().__init__()
        self.encoder = vgg_encoder()
        self.decoder = adain_decoder()
        if not random_init:
            for part, path in (('encoder', encoder_checkpoint), ('decoder', decoder_checkpoint)):
                if not path or not osp.isfile(path):
                    raise FileNotFoundError(
                        f'StyleCutMix: {part} weights {path!r} not found. Put {WEIGHTS_HINT} '
                        'at the configured encoder_checkpoint / decoder_checkpoint paths '
                        '(random_init=True is for tests only)')
                module = getattr(self, part)
                module.load_state_dict(_read_weights(part, path, module), strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen, as the authors' Net_E / Net_D in eval mode

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """relu4_1 features (N, 512, H/8, W/8) of images (N, 3, H, W)."""
        return self.encoder(x)

    def style_vector(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1920) means and stds of relu1_1 .. relu4_1, the StyleMix authors' style
        statistics (``net_styleDistance.py``) from which the class style distances come."""
        stats = []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in self.STYLE_LAYERS:
                stats += [t.flatten(1) for t in mean_std(x)]
        return torch.cat(stats, 1)

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        return self.decoder(feat)
