"""What the downstream chain runs, as data: the pretraining methods and their configs, the
fine-tuning options of each method (scratch, scratch-long), and which fine-tuning seeds meet
which pretraining seeds (:class:`TransferPlan`).

For each pretraining method (``scratch``: no pretraining, the backbone's own default init;
``scratch-long``: the same with 3x the fine-tuning schedule; ``baseline``; ``cutmix``; ``rm``;
or any other Fashion-MNIST comparator config), each pretraining seed and each fine-tuning seed
the chain fine-tunes every model of ``configs/downstream/fashion_mnist/models.json``.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..keys import parse_options
from ..records import REPO_ROOT
from .models import DOWNSTREAM_MODELS, LONG_METHODS

__all__ = ['FASHION_MNIST_PREFIX', 'FASHION_MNIST_FILES', 'PRETRAIN_OPTIONS', 'SCRATCH_METHODS',
           'SCRATCH_OPTIONS', 'SEG_SCRATCH_OPTIONS', 'PAIRINGS', 'LONG_FACTOR',
           'pretrain_configs', 'check_choices', 'parse_options', 'long_schedule_options',
           'seg_scratch_options', 'TransferPlan']

FASHION_MNIST_PREFIX = 'configs/rm/resnet18-w16_1xb128_fashion-mnist'
FASHION_MNIST_FILES = r'(train|t10k)-(images-idx3|labels-idx1)-ubyte(\.gz)?'
#: what every pretraining sets: validate each epoch, keep the best epoch's checkpoint
PRETRAIN_OPTIONS = ('default_hooks.checkpoint.save_best=accuracy/top1',
                    'default_hooks.checkpoint.rule=greater', 'train_cfg.val_interval=1')
#: the methods without pretraining
SCRATCH_METHODS = ('scratch', 'scratch-long')
#: a scratch fine-tuning: only the checkpoint load is removed. The Pretrained init_cfg is
#: replaced by the backbone's own default init (mmpretrain's ResNet: Kaiming on every Conv2d,
#: Constant 1 / 0 on the norms, which is PyTorch's own norm init, then zero_init_residual):
#: ``init_cfg=None`` would leave the convs at PyTorch's default (kaiming_uniform, a=sqrt(5)), a
#: third of Kaiming's std. A random backbone has nothing to freeze or keep either.
SCRATCH_OPTIONS = ('model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Kaiming',
                   'model.backbone.init_cfg.layer=Conv2d', 'model.backbone.frozen_stages=-1',
                   'model.backbone.norm_eval=False')
#: a scratch segmentor: the segmentors' recipe (canvas.py) gives the random heads
#: ``canvas_seg_head_lr_mult`` times the lr of the pretrained backbone, so as not to scramble
#: what it was pretrained to know; a random backbone has nothing to keep and learns at the
#: heads' lr (no multiplier: one lr, the heads', for every parameter)
SEG_SCRATCH_OPTIONS = ('optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult=1.0', )
#: how fine-tuning seeds meet pretraining seeds: ``cross``, every fine-tuning seed from every
#: pretraining seed; ``cycle``, fine-tuning seed number i from pretraining seed number
#: i mod (number of pretraining seeds): seeds 0 1 2 3 from pretrainings 0 1 0 1, so each cell's
#: runs span both sources of variation at half the cost of crossing them
PAIRINGS = ('cross', 'cycle')
#: scratch-long: this many times the fine-tuning schedule (DESIGN.md §6: a baseline is not
#: handicapped by a schedule made for the pretrained runs)
LONG_FACTOR = 3


def pretrain_configs(root: str = REPO_ROOT) -> Dict[str, Optional[str]]:
    """``{method: pretraining config}``: ``scratch`` and ``scratch-long`` (None), ``baseline``
    and every Fashion-MNIST
    comparator config (``..._fashion-mnist_<method>.py``), relative to ``root``."""
    methods: Dict[str, Optional[str]] = {'scratch': None, 'scratch-long': None,
                                         'baseline': FASHION_MNIST_PREFIX + '.py'}
    folder = osp.join(root, osp.dirname(FASHION_MNIST_PREFIX))
    stem = osp.basename(FASHION_MNIST_PREFIX) + '_'
    for name in sorted(os.listdir(folder)):
        if name.startswith(stem) and name.endswith('.py'):
            methods[name[len(stem):-3]] = osp.join(osp.dirname(FASHION_MNIST_PREFIX), name)
    return methods


def check_choices(methods: Sequence[str], models: Sequence[str],
                  pretrained: Dict[str, str]) -> None:
    """Refuse unknown methods, models and ``--pretrained`` entries, naming the allowed values
    (the one check of the chain and its command line)."""
    known = pretrain_configs()
    for m in methods:
        if m not in known:
            raise ValueError(f'unknown pretraining method {m!r}; allowed: {", ".join(known)}')
    for m in models:
        if m not in DOWNSTREAM_MODELS:
            raise ValueError(f'unknown downstream model {m!r}; allowed: '
                             f'{", ".join(DOWNSTREAM_MODELS)}')
    for m, path in pretrained.items():
        if m not in known or m in SCRATCH_METHODS:
            raise ValueError(f'--pretrained {m}=...: {m!r} is not a pretraining method '
                             f'(allowed: '
                             f'{", ".join(k for k in known if k not in SCRATCH_METHODS)})')
        if not osp.isfile(path):
            raise FileNotFoundError(f'--pretrained {m}={path}: no such checkpoint')


def _scaled(value, factor: int):
    return [_scaled(v, factor) for v in value] if isinstance(value, (list, tuple)) \
        else value * factor


def long_schedule_options(config: str, options: Sequence[str] = (),
                          factor: int = LONG_FACTOR) -> List[str]:
    """The ``--cfg-options`` that make ``config`` (with ``options`` applied) train ``factor``
    times as long: the loop's ``max_epochs`` / ``max_iters``; its ``val_interval`` and an
    iteration checkpoint interval where they equal the length; every parameter scheduler in
    the loop's unit (epochs for mmdet's loop, iterations for mmseg's) has its ``begin``, ``end``
    and ``milestones`` (and ``T_max``) scaled, so that the steps / the poly decay fall at the
    same fraction of the schedule. A warm-up in the other unit (mmdet's 100-iteration LinearLR
    in an epoch loop) is kept: it is not part of the schedule's length."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(parse_options(options))
    loop = cfg.train_cfg
    by_epoch = 'max_epochs' in loop
    unit = 'max_epochs' if by_epoch else 'max_iters'
    length = loop[unit]
    out = [f'train_cfg.{unit}={length * factor}']
    if loop.get('val_interval') == length:
        out.append(f'train_cfg.val_interval={length * factor}')
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint') or {}
    if not by_epoch and checkpoint.get('interval') == length:
        out.append(f'default_hooks.checkpoint.interval={length * factor}')
    schedulers = cfg.param_scheduler
    single = isinstance(schedulers, dict)
    for i, sched in enumerate([schedulers] if single else schedulers):
        if bool(sched.get('by_epoch', True)) != by_epoch:
            continue
        for key in ('begin', 'end', 'T_max', 'milestones'):
            value = sched.get(key)
            if value is None or (not isinstance(value, (list, tuple)) and value >= 1e8):
                continue  # absent, or MMEngine's "until the end" (INF)
            scaled = _scaled(value, factor)
            text = f'[{",".join(map(str, scaled))}]' if isinstance(scaled, list) else scaled
            out.append(f'param_scheduler{"" if single else f".{i}"}.{key}={text}')
    return out


def seg_scratch_options(config: str) -> List[str]:
    """The ``--cfg-options`` that give a scratch segmentor one lr, its heads', everywhere:
    :data:`SEG_SCRATCH_OPTIONS` and the optimiser's lr times ``canvas_seg_head_lr_mult``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    lr = round(cfg.optim_wrapper.optimizer.lr * cfg.canvas_seg_head_lr_mult, 12)
    return [*SEG_SCRATCH_OPTIONS, f'optim_wrapper.optimizer.lr={lr!r}']


class TransferPlan:
    """Which runs the chain makes: ``methods`` x ``models`` x pretraining seeds x ``seeds``.

    Args:
        methods, models, seeds: pretraining methods, downstream models, fine-tuning seeds.
        pretrain_seeds: seeds of the pretraining runs (an int: one). The scratch methods have
            none, nor has a method whose checkpoint is ``pretrained``.
        pairing: which fine-tuning seeds run from which pretraining seed (:data:`PAIRINGS`):
            ``cross`` (each from each) or ``cycle`` (the i-th fine-tuning seed from the
            (i mod P)-th of the P pretraining seeds).
        pretrained: ``{method: checkpoint}`` given instead of pretraining those methods.
        finetune_options: extra ``--cfg-options`` of every fine-tuning, or ``{'det': [...],
            'seg': [...]}`` per task (their loops differ: epochs / iterations).
    """

    def __init__(self, methods: Sequence[str], models: Sequence[str], seeds: Sequence[int],
                 pretrain_seeds: Union[int, Sequence[int]] = (0, ), pairing: str = 'cross',
                 pretrained: Optional[Dict[str, str]] = None, finetune_options=()):
        self.pretrained = {m: osp.abspath(p) for m, p in (pretrained or {}).items()}
        check_choices(methods, models, self.pretrained)
        self.methods, self.models, self.seeds = list(methods), list(models), list(seeds)
        self.pretrain_seeds = [pretrain_seeds] if isinstance(pretrain_seeds, int) else list(
            pretrain_seeds)
        if not self.pretrain_seeds or len(set(self.pretrain_seeds)) != len(self.pretrain_seeds):
            raise ValueError(f'pretrain_seeds must be distinct and not empty, got '
                             f'{self.pretrain_seeds}')
        if pairing not in PAIRINGS:
            raise ValueError(f'pairing must be one of {", ".join(PAIRINGS)}, got {pairing!r}')
        self.pairing = pairing
        if isinstance(finetune_options, dict):
            unknown = set(finetune_options) - {'det', 'seg'}
            if unknown:
                raise ValueError(f'finetune_options: unknown task(s) {sorted(unknown)}; '
                                 'allowed: det, seg')
            self.finetune_options = {t: list(finetune_options.get(t, ())) for t in ('det', 'seg')}
        else:
            self.finetune_options = {t: list(finetune_options) for t in ('det', 'seg')}

    def seeds_of(self, method: str) -> List[Optional[int]]:
        """The pretraining seeds of ``method``: none for scratch (``[None]``), the given
        checkpoint's (``[None]``), else :attr:`pretrain_seeds`."""
        if method in SCRATCH_METHODS or method in self.pretrained:
            return [None]
        return list(self.pretrain_seeds)

    def pairs_of(self, method: str) -> List[Tuple[Optional[int], int]]:
        """``(pretraining seed, fine-tuning seed)`` of every fine-tuning of ``method``, in
        fine-tuning seed order (see ``pairing``)."""
        pre = self.seeds_of(method)
        if self.pairing == 'cycle':
            return [(pre[i % len(pre)], s) for i, s in enumerate(self.seeds)]
        return [(p, s) for s in self.seeds for p in pre]

    def used_seeds(self, method: str) -> List[Optional[int]]:
        """The pretraining seeds of ``method`` that some fine-tuning runs from."""
        used = {p for p, _ in self.pairs_of(method)}
        return [p for p in self.seeds_of(method) if p in used]

    def pretrainings(self) -> List[Tuple[str, Optional[int]]]:
        """``(method, pretraining seed)`` of every pretraining (or conversion) the chain needs;
        a given checkpoint has seed None."""
        return [(m, p) for m in self.methods if m not in SCRATCH_METHODS
                for p in self.used_seeds(m)]

    def finetunings(self, models: Optional[Sequence[str]] = None
                    ) -> List[Tuple[str, str, Optional[int], int]]:
        """``(model, method, pretraining seed, fine-tuning seed)`` of every fine-tuning,
        seed-major, in ``models`` order within a seed."""
        models = self.models if models is None else models
        return [(model, method, p, seed) for seed in self.seeds for method in self.methods
                for p, s in self.pairs_of(method) if s == seed for model in models]

    def shaping_options(self, model_name: str, method: str) -> List[str]:
        """The ``--cfg-options`` that shape a fine-tuning of ``method`` (part of its key)."""
        model = DOWNSTREAM_MODELS[model_name]
        user = self.finetune_options[model.task]
        if method not in SCRATCH_METHODS:
            return list(user)
        options = list(SCRATCH_OPTIONS)
        if model.task == 'seg':
            options += seg_scratch_options(osp.join(REPO_ROOT, model.config))
        options += user
        if method in LONG_METHODS:
            options += long_schedule_options(osp.join(REPO_ROOT, model.config), options)
        return options
