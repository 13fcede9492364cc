"""Shared logic of the analysis and visualisation tools (paper Table 10, Figs. 1-8).

The tools in ``tools/analysis_tools`` and ``tools/visualization`` are thin command lines over
this module, so the tests exercise the same code:

- :func:`derive_variants`: from one RM config, the baseline / Mixup / CutMix / RM models of
  the same network (Table 10's rows);
- :func:`cost_report`: parameters (train / deploy), FLOPs, peak memory and time of a training
  step per variant (``tools/analysis_tools/rm_cost_report.py``);
- :func:`count_effective_classes` / :func:`effective_classes`: the effective class number of
  Fig. 8 (``tools/analysis_tools/effective_classes.py``);
- :func:`class_activation_maps`: plain CAM (Zhou et al. 2016, the paper's [65]) for Figs. 6-7
  (``tools/visualization/vis_cam_compare.py``);
- :func:`collect_sweep` / :func:`summarise_sweep` / :func:`plot_sweep`: Figs. 4-5
  (``tools/analysis_tools/plot_sweep.py``).

Only standard dependencies of the project (torch, mmengine, mmpretrain, matplotlib) are used.
"""
import copy
import ctypes
import gc
import glob
import json
import logging
import math
import os.path as osp
import re
import statistics
import time
import traceback
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

VARIANTS = ('baseline', 'mixup', 'cutmix', 'rm')
VARIANT_NAMES = dict(baseline='Baseline', mixup='+ Mixup', cutmix='+ CutMix', rm='+ RM')
#: what the repository's Mixup / CutMix configs use (mmpretrain's ImageNet settings)
DEFAULT_MIXUP = dict(type='Mixup', alpha=1.0)
DEFAULT_CUTMIX = dict(type='CutMix', alpha=1.0)
RM_AUGMENT = 'RecursiveMixBatchAugment'


# --------------------------------------------------------------------------------------------
# configs and models
# --------------------------------------------------------------------------------------------
def shape_type(layout: str) -> Callable[[str], Tuple[int, ...]]:
    """An argparse ``type`` reading ``'3x224x224'``-style shapes with the dims of ``layout``
    (e.g. ``'CxHxW'``, ``'NxCxHxW'``)."""
    import argparse
    ndim = len(layout.split('x'))

    def parse(text: str) -> Tuple[int, ...]:
        try:
            dims = tuple(int(v) for v in text.lower().split('x'))
        except ValueError:
            dims = ()
        if len(dims) != ndim or min(dims) <= 0:
            raise argparse.ArgumentTypeError(f'shape must be {layout} (positive ints), '
                                             f'got {text!r}')
        return dims

    return parse


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile`` + ``--cfg-options`` + the config's custom imports + default scope."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    prepare_scope(cfg)
    return cfg


def prepare_scope(cfg=None) -> None:
    """Import mmrm and the config's ``custom_imports``; set the default registry scope."""
    import mmrm  # noqa: F401  (registers the RM components)
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg is not None and cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    scope = cfg.get('default_scope', 'mmpretrain') if cfg is not None else 'mmpretrain'
    init_default_scope(scope or 'mmpretrain')


def _plain(obj):
    """ConfigDict / nested containers -> plain dicts and lists (picklable, deep-copied)."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return copy.deepcopy(obj)


def model_config(cfg) -> dict:
    """The model dict as the Runner builds it (top-level ``data_preprocessor`` merged in)."""
    model = _plain(cfg['model'])
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', _plain(cfg['data_preprocessor']))
    return model


def _augments_of(model: dict):
    augs = (model.get('train_cfg') or {}).get('augments')
    if augs is None:
        return []
    return list(augs) if isinstance(augs, (list, tuple)) else [augs]


def _is_rm_augment(aug) -> bool:
    return isinstance(aug, dict) and aug.get('type') in (RM_AUGMENT, f'mmrm.{RM_AUGMENT}')


def _set_soft_loss(head: dict, soft: bool) -> None:
    loss = head.get('loss')
    if isinstance(loss, dict) and str(loss.get('type', '')).endswith('CrossEntropyLoss'):
        loss['use_soft'] = soft


def _sibling_augment(config_path: Optional[str], kind: str) -> Optional[dict]:
    """``model.train_cfg.augments`` of the sibling config ``..._<kind>.py`` of an RM config."""
    if not config_path:
        return None
    sibling = re.sub(r'_rm(-[^/_]*)?\.py$', f'_{kind}.py', config_path)
    if sibling == config_path or not osp.isfile(sibling):
        return None
    from mmengine.config import Config
    try:
        augs = _augments_of(model_config(Config.fromfile(sibling)))
    except Exception:  # a broken sibling must not break the report
        return None
    return augs[0] if len(augs) == 1 and isinstance(augs[0], dict) else None


def derive_variants(cfg, config_path: Optional[str] = None, mixup: Optional[dict] = None,
                    cutmix: Optional[dict] = None) -> Tuple['OrderedDict[str, dict]', dict]:
    """The four models of Table 10 from one RM config (same backbone, neck and head).

    - ``baseline``: ``ImageClassifier``, no batch augment, hard-label CE, no ``roi_head``;
    - ``mixup`` / ``cutmix``: the baseline with soft CE and mmpretrain's ``Mixup`` / ``CutMix``
      as ``train_cfg.augments``; the augment is taken from the sibling config
      (``*_rm.py`` -> ``*_mixup.py`` / ``*_cutmix.py``) when there is one, else alpha 1 (what the
      repository's configs use), unless ``mixup`` / ``cutmix`` is given;
    - ``rm``: the config's own model (``RMClassifier``). A config without an RM model gets
      ``RMClassifier`` with the default RM augment and ``RoIConsistencyHead``.

    Returns ``(variants, sources)``: model dicts keyed by :data:`VARIANTS`, and where each
    Mixup / CutMix augment came from.
    """
    model = model_config(cfg)
    base = copy.deepcopy(model)
    base['type'] = 'ImageClassifier'
    base.pop('roi_head', None)
    train_cfg = dict(base.get('train_cfg') or {})
    train_cfg.pop('augments', None)
    train_cfg.pop('probs', None)
    base['train_cfg'] = train_cfg or None
    pre = base.get('data_preprocessor')
    if isinstance(pre, dict):
        pre.pop('batch_augments', None)
        if str(pre.get('type', '')).endswith('RMDataPreprocessor'):
            pre.pop('type')
    if isinstance(base.get('head'), dict):
        _set_soft_loss(base['head'], False)

    sources = {}
    variants = OrderedDict(baseline=base)
    for kind, given, default in (('mixup', mixup, DEFAULT_MIXUP), ('cutmix', cutmix,
                                                                   DEFAULT_CUTMIX)):
        aug, src = given, 'given'
        if aug is None:
            aug, src = _sibling_augment(config_path, kind), 'sibling config'
        if aug is None:
            aug, src = copy.deepcopy(default), 'default'
        m = copy.deepcopy(base)
        m['train_cfg'] = dict(train_cfg, augments=copy.deepcopy(aug))
        if isinstance(m.get('head'), dict):
            _set_soft_loss(m['head'], True)
        variants[kind] = m
        sources[kind] = (src, aug)

    if model.get('type') in ('RMClassifier', 'mmrm.RMClassifier'):
        rm = copy.deepcopy(model)
    else:
        rm = copy.deepcopy(base)
        rm['type'] = 'RMClassifier'
        augs = [a for a in _augments_of(model) if _is_rm_augment(a)]
        rm['train_cfg'] = dict(train_cfg, augments=augs[0] if augs else dict(type=RM_AUGMENT))
        rm.setdefault('roi_head', dict(type='RoIConsistencyHead'))
        if isinstance(rm.get('data_preprocessor'), dict):
            rm['data_preprocessor'].pop('type', None)
        if isinstance(rm.get('head'), dict):
            _set_soft_loss(rm['head'], True)
    variants['rm'] = rm
    return variants, sources


def build_model(model_cfg: dict, device: str = 'cpu') -> torch.nn.Module:
    from mmpretrain.registry import MODELS
    model = MODELS.build(copy.deepcopy(model_cfg))
    return model.to(device)


def build_train_loader(cfg, seed: Optional[int] = 0, batch_size: Optional[int] = None,
                       num_workers: int = 0):
    """The config's training dataloader (its dataset, pipeline and sampler), in this process
    by default (``num_workers=0``), optionally with another batch size. ``seed`` seeds the
    sampler and the random generators the pipeline draws from (reproducible pictures)."""
    from mmengine.runner import Runner, set_random_seed
    if seed is not None:
        set_random_seed(seed)
    loader_cfg = _plain(cfg['train_dataloader'])
    loader_cfg['num_workers'] = num_workers
    loader_cfg['persistent_workers'] = False
    if num_workers == 0:
        loader_cfg.pop('prefetch_factor', None)
    if batch_size:
        loader_cfg['batch_size'] = batch_size
    return Runner.build_dataloader(loader_cfg, seed=seed)


def num_classes_of(model_cfg: dict) -> int:
    head = model_cfg.get('head') or {}
    k = head.get('num_classes') or (model_cfg.get('data_preprocessor') or {}).get('num_classes')
    if not k:
        raise ValueError('cannot tell the number of classes: set model.head.num_classes')
    return int(k)


def input_channels_of(model_cfg: dict) -> int:
    return int((model_cfg.get('backbone') or {}).get('in_channels', 3))


# --------------------------------------------------------------------------------------------
# Table 10: parameters, FLOPs, memory, time
# --------------------------------------------------------------------------------------------
def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def deploy_state_dict(model: torch.nn.Module) -> dict:
    """The state dict that ``tools/model_converters/rm2cls.py`` would export."""
    from .convert import convert_rm_checkpoint
    converted, _ = convert_rm_checkpoint(dict(state_dict=model.state_dict()))
    return converted['state_dict']


def deploy_params(model: torch.nn.Module) -> int:
    """Parameters left after :func:`~mmrm.utils.convert.convert_rm_checkpoint`."""
    kept = deploy_state_dict(model)
    return sum(p.numel() for n, p in model.named_parameters() if n in kept)


def count_flops(model: torch.nn.Module, shape: Sequence[int]) -> int:
    """FLOPs of one inference forward (``mode='tensor'``) on a ``(1, C, H, W)`` input, as
    ``mmengine.analysis`` counts them (one multiply-add = one FLOP, the paper's 4.12G)."""
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger
    quiet = [MMLogger.get_current_instance()]
    levels = [lg.level for lg in quiet]
    for lg in quiet:  # its notes on ops it does not count (BN, pooling, adds)
        lg.setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    try:
        info = get_model_complexity_info(model, input_shape=tuple(shape), show_table=False,
                                         show_arch=False)
    finally:
        model.train(was_training)
        for lg, lvl in zip(quiet, levels):
            lg.setLevel(lvl)
    return int(info['flops'])


def make_batch_factory(batch: int, shape: Sequence[int], num_classes: int,
                       seed: int = 0, pin_memory: bool = False) -> Callable[[], dict]:
    """A function returning a fresh loader-like batch: uint8 images ``(N, C, H, W)`` (as
    ``default_collate`` stacks them, in page-locked memory with ``pin_memory`` as a loader with
    ``pin_memory=True`` gives them) and new ``DataSample`` objects with hard labels."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, *shape), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (batch, ), generator=g).tolist()

    def fresh():
        return dict(inputs=images.clone().pin_memory() if pin_memory else images.clone(),
                    data_samples=[DataSample().set_gt_label(int(v)) for v in labels])

    return fresh


def build_optim_wrapper(model: torch.nn.Module, optim_cfg: Optional[dict], device: str):
    """The config's optimizer (plain ``OptimWrapper`` on CPU); SGD 0.1 / 0.9 without one."""
    from mmengine.optim import build_optim_wrapper as _build
    cfg = copy.deepcopy(optim_cfg) if optim_cfg else dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
    if not str(device).startswith('cuda') and cfg.get('type') in ('AmpOptimWrapper', ):
        cfg['type'] = 'OptimWrapper'
        cfg.pop('loss_scale', None)
        cfg.pop('dtype', None)
    return _build(model, cfg)


def _sync(device: str) -> None:
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def time_train_steps(models: 'OrderedDict[str, torch.nn.Module]', optim_wrappers: dict,
                     batch_factory: Callable[[], dict], repeats: int, warmup: int = 1,
                     device: str = 'cpu') -> Dict[str, List[float]]:
    """Seconds per full training step (``model.train_step``: data preprocessor with the batch
    augment, forward, loss, backward, optimizer step), interleaved: every round runs each model
    once in turn (A B C D A B C D ...), so machine load hits all variants alike. A fresh batch
    (made outside the timed region) feeds every step. ``warmup`` rounds are not recorded."""
    times = {name: [] for name in models}
    for r in range(warmup + repeats):
        for name, model in models.items():
            data = batch_factory()
            _sync(device)
            t0 = time.perf_counter()
            log_vars = model.train_step(data, optim_wrappers[name])
            _sync(device)
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
            if r == warmup + repeats - 1:
                loss = float(log_vars['loss'].detach())
                if not math.isfinite(loss):
                    print(f'warning: {name}: non-finite loss {loss} in the timed steps')
    return times


def profile_train_steps(models: 'OrderedDict[str, torch.nn.Module]', optim_wrappers: dict,
                        batch_factory: Callable[[], dict], steps: int = 5,
                        device: str = 'cpu') -> Dict[str, Dict[str, dict]]:
    """Per-operator cost of ``steps`` training steps per model, from ``torch.profiler``.

    Returns ``{model: {op: dict(count, cpu_us, dev_us)}}``, per step: calls, self host time and
    self device time (0 on CPU) in microseconds. One untimed step runs first."""
    from torch.profiler import ProfilerActivity, profile
    cuda = str(device).startswith('cuda')
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    out = OrderedDict()
    for name, model in models.items():
        model.train_step(batch_factory(), optim_wrappers[name])
        batches = [batch_factory() for _ in range(steps)]
        _sync(device)
        with profile(activities=acts) as prof:
            for data in batches:
                model.train_step(data, optim_wrappers[name])
            _sync(device)
        stats = {}
        for e in prof.key_averages():
            dev = getattr(e, 'self_device_time_total', None)
            if dev is None:
                dev = getattr(e, 'self_cuda_time_total', 0)
            stats[e.key] = dict(count=e.count / steps, cpu_us=e.self_cpu_time_total / steps,
                                dev_us=(dev / steps) if cuda else 0.)
        out[name] = stats
    return out


def format_profile_diff(profiles: dict, a: str = 'rm', b: str = 'cutmix', top: int = 12,
                        key: str = 'cpu_us') -> str:
    """Markdown table of the operators with the largest extra self time of ``a`` over ``b``
    per step (``key``: 'cpu_us' host time or 'dev_us' device time), and the totals."""
    pa, pb = profiles[a], profiles[b]
    zero = dict(count=0., cpu_us=0., dev_us=0.)
    rows = []
    for op in set(pa) | set(pb):
        ra, rb = pa.get(op, zero), pb.get(op, zero)
        rows.append((ra[key] - rb[key], op, ra, rb))
    rows.sort(key=lambda r: -r[0])
    total_a = sum(r[key] for r in pa.values())
    total_b = sum(r[key] for r in pb.values())
    what = 'host' if key == 'cpu_us' else 'device'
    lines = [f'self {what} time per step: {a} {total_a / 1e3:.3f} ms, {b} {total_b / 1e3:.3f} ms, '
             f'difference {(total_a - total_b) / 1e3:+.3f} ms; largest contributions:', '',
             f'| op | {a} - {b} (us) | {a} calls | {b} calls |', '| --- | ---: | ---: | ---: |']
    for diff, op, ra, rb in rows[:top]:
        lines.append(f"| {op} | {diff:+.1f} | {ra['count']:g} | {rb['count']:g} |")
    return '\n'.join(lines)


# ---- memory: one fresh child process per variant -------------------------------------------
def _proc_status_kb(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _fix_malloc() -> None:
    """Make glibc hand every block >= 128 KiB straight back to the OS on free (no dynamic mmap
    threshold, no heap trimming slack), so RSS follows the live tensors closely."""
    try:
        libc = ctypes.CDLL('libc.so.6')
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _memory_child(conn, model_cfg: dict, optim_cfg: Optional[dict], batch: int,
                  shape: Sequence[int], steps: int, device: str, scope_cfg: dict,
                  threads: Optional[int]) -> None:
    try:
        from mmengine.config import Config
        prepare_scope(Config(scope_cfg))
        if threads:
            torch.set_num_threads(threads)
        _fix_malloc()
        gc.collect()
        reset = _reset_peak_rss()
        rss0 = _proc_status_kb('VmRSS')
        hwm0 = _proc_status_kb('VmHWM')
        cuda = str(device).startswith('cuda')
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        model = build_model(model_cfg, device)
        model.train()
        ow = build_optim_wrapper(model, optim_cfg, device)
        fresh = make_batch_factory(batch, shape, num_classes_of(model_cfg))
        for _ in range(steps):
            model.train_step(fresh(), ow)
        _sync(device)
        hwm = _proc_status_kb('VmHWM')
        out = dict(rss_start_mb=rss0 / 1024 if rss0 else None,
                   peak_rss_mb=hwm / 1024 if hwm else None,
                   hwm_reset=reset or (hwm0 is not None and hwm0 <= (rss0 or 0)))
        if hwm is not None and rss0 is not None:
            out['peak_growth_mb'] = (hwm - rss0) / 1024
        if cuda:
            out['cuda_peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
        conn.send(out)
    except BaseException:  # report any failure to the parent
        conn.send(dict(error=traceback.format_exc()))
    finally:
        conn.close()


def measure_memory(model_cfg: dict, optim_cfg: Optional[dict], batch: int,
                   shape: Sequence[int], steps: int = 3, device: str = 'cpu',
                   mode: str = 'fork', scope_cfg: Optional[dict] = None,
                   threads: Optional[int] = None, timeout: float = 1800) -> dict:
    """Peak memory of ``steps`` training steps of one model, in a fresh child process.

    CPU: the growth of the child's peak resident set size (``VmHWM``, reset when the child
    starts) over its RSS before the model is built: parameters, gradients, optimizer state,
    activations, the RM history and allocator overhead, all of which this one model needs; the
    interpreter and libraries are excluded. glibc returns blocks >= 128 KiB to the OS on free,
    so the peak follows the live tensors. CUDA: ``torch.cuda.max_memory_allocated``.

    ``mode='fork'`` forks the calling process (fast: no re-import; the caller must not have run
    parallel torch ops or initialised CUDA before, as the cost tool guarantees); ``'spawn'``
    starts a new interpreter (slow, always safe).
    """
    import multiprocessing as mp
    ctx = mp.get_context(mode)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_memory_child,
                       args=(child, model_cfg, optim_cfg, batch, tuple(shape), steps, device,
                             scope_cfg or {}, threads))
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            proc.kill()
            raise RuntimeError(f'memory measurement timed out after {timeout} s')
        out = parent.recv()
    except EOFError:
        out = dict(error=f'the child died (exit code {proc.exitcode})')
    finally:
        proc.join()
    if 'error' in out:
        raise RuntimeError('memory measurement failed:\n' + out['error'])
    return out


def cost_report(cfg, config_path: Optional[str] = None, batch: int = 8,
                shape: Optional[Sequence[int]] = None, repeats: int = 10, warmup: int = 1,
                device: Optional[str] = None, memory: str = 'auto', memory_steps: int = 3,
                threads: Optional[int] = None, mixup: Optional[dict] = None,
                cutmix: Optional[dict] = None, profile_steps: int = 0,
                log: Callable = print) -> dict:
    """Everything of Table 10 for the four variants of ``cfg`` (see :func:`derive_variants`).

    Memory is measured first, in child processes, before this process runs any torch op.
    ``memory``: 'fork' (fast), 'spawn' (a new interpreter per variant), 'auto' (fork on CPU,
    spawn on CUDA, where a forked child cannot use CUDA after the parent touched it) or 'none'.
    ``profile_steps`` > 0 also profiles that many steps of RM and CutMix
    (:func:`profile_train_steps`, after the timing) into ``profiles``.
    Returns a dict: ``rows`` (per variant: ``params_train``, ``params_deploy``, ``flops``,
    ``memory_mb``, ``step_ms`` (median), ``step_ms_all``), ``ratios`` and the settings.
    """
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    variants, sources = derive_variants(cfg, config_path, mixup=mixup, cutmix=cutmix)
    if shape is None:
        shape = (input_channels_of(variants['rm']), 224, 224)
    shape = tuple(int(v) for v in shape)
    optim_cfg = _plain(cfg.get('optim_wrapper')) if cfg.get('optim_wrapper') else None
    scope_cfg = dict(default_scope=cfg.get('default_scope', 'mmpretrain'),
                     custom_imports=_plain(cfg.get('custom_imports')) or dict(imports=['mmrm']))
    rows = OrderedDict((name, dict(name=VARIANT_NAMES[name])) for name in variants)

    mem_key = 'cuda_peak_mb' if str(device).startswith('cuda') else 'peak_growth_mb'
    if memory == 'auto':
        memory = 'spawn' if mem_key == 'cuda_peak_mb' else 'fork'
    if memory != 'none':
        for name, mcfg in variants.items():
            log(f'[memory] {name}: {memory_steps} training steps in a fresh {memory} child')
            out = measure_memory(mcfg, optim_cfg, batch, shape, memory_steps, device, memory,
                                 scope_cfg, threads)
            rows[name]['memory_mb'] = out.get(mem_key)
            rows[name]['memory_detail'] = out
            if mem_key == 'peak_growth_mb' and not out.get('hwm_reset'):
                log('warning: the child could not reset its peak RSS (/proc/self/clear_refs); '
                    'its figure may include the parent\'s peak: use --memory spawn')
    if threads:
        torch.set_num_threads(threads)

    models = OrderedDict()
    for name, mcfg in variants.items():
        model = build_model(mcfg, device)
        model.train()
        rows[name]['params_train'] = count_params(model)
        rows[name]['params_deploy'] = deploy_params(model)
        log(f'[flops] {name}')
        rows[name]['flops'] = count_flops(model, shape)
        models[name] = model
    # the deploy weights of RM must load, strictly, into the plain baseline model
    try:
        models['baseline'].load_state_dict(deploy_state_dict(models['rm']), strict=True)
        deploy_loads = True
    except RuntimeError as e:
        deploy_loads = str(e).splitlines()[0]
    for m in models.values():  # load_state_dict changed nothing that matters for timing
        m.zero_grad(set_to_none=True)

    times = profiles = None
    if repeats > 0 or profile_steps > 0:
        wrappers = {name: build_optim_wrapper(m, optim_cfg, device)
                    for name, m in models.items()}
        fresh = make_batch_factory(batch, shape, num_classes_of(variants['rm']))
    if repeats > 0:
        log(f'[time] {warmup} warm-up + {repeats} interleaved rounds of '
            f'{" ".join(models)} ({device})')
        times = time_train_steps(models, wrappers, fresh, repeats, warmup, device)
    if profile_steps > 0:
        log(f'[profile] {profile_steps} steps of rm and cutmix ({device})')
        profiles = profile_train_steps(
            OrderedDict((k, models[k]) for k in ('rm', 'cutmix')), wrappers, fresh,
            profile_steps, device)
    for name in models:
        ts = times[name] if times else []
        rows[name]['step_ms'] = statistics.median(ts) * 1e3 if ts else None
        rows[name]['step_ms_all'] = [t * 1e3 for t in ts]

    def ratio(key, a, b):
        va, vb = rows[a].get(key), rows[b].get(key)
        return va / vb if va is not None and vb else None

    ratios = OrderedDict()
    for key in ('step_ms', 'memory_mb', 'params_train', 'params_deploy', 'flops'):
        ratios[f'{key} rm/cutmix'] = ratio(key, 'rm', 'cutmix')
        ratios[f'{key} rm/baseline'] = ratio(key, 'rm', 'baseline')
    if times:  # robust to drifting load: median over rounds of the per-round ratio
        for other in ('cutmix', 'baseline'):
            paired = [a / b for a, b in zip(times['rm'], times[other])]
            ratios[f'step rm/{other} (median of per-round ratios)'] = statistics.median(paired)
    return dict(rows=rows, ratios=ratios, batch=batch, shape=list(shape), device=device,
                repeats=repeats, warmup=warmup, memory_mode=memory, memory_steps=memory_steps,
                memory_measure=('torch.cuda.max_memory_allocated' if mem_key == 'cuda_peak_mb'
                                else 'peak RSS growth of a fresh child over its start RSS'),
                augment_sources={k: [s, _plain(a)] for k, (s, a) in sources.items()},
                deploy_loads_into_baseline=deploy_loads, threads=torch.get_num_threads(),
                profiles=profiles)


def _fmt_m(v):
    return '-' if v is None else f'{v / 1e6:.4f} M'


def format_cost_table(report: dict) -> str:
    """Markdown table of :func:`cost_report` (the numbers the ratios are computed from)."""
    lines = [
        '| variant | params train | params deploy | FLOPs | memory (MB) | step (ms, median) |',
        '| --- | ---: | ---: | ---: | ---: | ---: |'
    ]

    def num(v, fmt):
        return '-' if v is None else format(v, fmt)

    for row in report['rows'].values():
        lines.append(f"| {row['name']} | {_fmt_m(row['params_train'])} "
                     f"| {_fmt_m(row['params_deploy'])} | {row['flops'] / 1e9:.4f} G "
                     f"| {num(row.get('memory_mb'), '.1f')} | {num(row['step_ms'], '.2f')} |")
    lines.append('')
    for key, val in report['ratios'].items():
        if val is not None:
            lines.append(f'- {key}: {val:.4f}')
    return '\n'.join(lines)


# --------------------------------------------------------------------------------------------
# Fig. 8: effective class number
# --------------------------------------------------------------------------------------------
DEFAULT_THRESHOLDS = (1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.3, 0.4)


def count_effective_classes(scores: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """Per sample and threshold, the number of classes whose target is strictly above it:
    ``(N, K)`` scores -> ``(N, len(thresholds))`` integer counts."""
    s = scores.detach().float().cpu()
    th = torch.as_tensor(list(thresholds), dtype=torch.float32)
    return (s.unsqueeze(1) > th.view(1, -1, 1)).sum(-1)


def variant_preprocessors(cfg, config_path: Optional[str] = None,
                          methods: Sequence[str] = VARIANTS) -> 'OrderedDict[str, object]':
    """A ``ClsDataPreprocessor`` of the config (normalisation, classes) per method, each with
    the method's batch augment (the baseline: one-hot labels, no augment)."""
    from mmpretrain.registry import MODELS
    variants, _ = derive_variants(cfg, config_path)
    pres = OrderedDict()
    for name in methods:
        pre_cfg = dict(variants[name].get('data_preprocessor') or {})
        pre_cfg.pop('type', None)
        pre_cfg.pop('batch_augments', None)
        pre_cfg['type'] = 'ClsDataPreprocessor'
        pre_cfg.setdefault('num_classes', num_classes_of(variants[name]))
        augs = _augments_of(variants[name])
        if augs:
            pre_cfg['batch_augments'] = dict(augments=augs)
        else:
            pre_cfg['to_onehot'] = True
        pres[name] = MODELS.build(pre_cfg)
    return pres


def effective_classes(preprocessors: 'OrderedDict[str, object]', batches, iters: int,
                      thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                      seed: Optional[int] = 0) -> 'OrderedDict[str, List[float]]':
    """Mean effective class number per method and threshold over ``iters`` loader batches.

    Every batch goes through every method's preprocessor in training mode (each keeps its
    own state, e.g. the RM history), so the methods see the same images and labels. Returns
    ``{method: [mean count per threshold]}`` (mean over samples and iterations).
    """
    if seed is not None:
        np.random.seed(seed)
        torch.manual_seed(seed)
    totals = OrderedDict((name, torch.zeros(len(thresholds), dtype=torch.float64))
                         for name in preprocessors)
    n = 0
    for _, data in zip(range(iters), batches):
        for name, pre in preprocessors.items():
            out = pre(copy.deepcopy(data), True)
            scores = torch.stack([s.gt_score for s in out['data_samples']])
            totals[name] += count_effective_classes(scores, thresholds).sum(0).double()
        n += len(out['data_samples'])
    if n == 0:
        raise ValueError('effective_classes: the loader gave no batch')
    return OrderedDict((name, (t / n).tolist()) for name, t in totals.items())


def format_effective_table(result: dict, thresholds: Sequence[float],
                           markdown: bool = True) -> str:
    names = list(result)
    if markdown:
        lines = ['| threshold | ' + ' | '.join(VARIANT_NAMES.get(n, n) for n in names) + ' |',
                 '| ---: |' + ' ---: |' * len(names)]
        for i, th in enumerate(thresholds):
            lines.append(f'| {th:g} | ' + ' | '.join(f'{result[n][i]:.3f}' for n in names) +
                         ' |')
    else:
        lines = ['threshold,' + ','.join(names)]
        for i, th in enumerate(thresholds):
            lines.append(f'{th:g},' + ','.join(f'{result[n][i]:.6f}' for n in names))
    return '\n'.join(lines)


def plot_effective_classes(result: dict, thresholds: Sequence[float], path: str,
                           title: Optional[str] = None, size=(5.0, 3.4), dpi: int = 80):
    """Line plot (log-x threshold, y mean effective classes), one line per method. Returns the
    plotted ``{method: (x, y)}``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size)
    plotted = {}
    for name, values in result.items():
        line, = ax.plot(list(thresholds), values, marker='o', ms=3,
                        label=VARIANT_NAMES.get(name, name).lstrip('+ '))
        plotted[name] = (list(line.get_xdata()), list(line.get_ydata()))
    ax.set_xscale('log')
    ax.set_xlabel('threshold')
    ax.set_ylabel('effective classes (mean)')
    _save_line_plot(plt, fig, ax, path, title, dpi)
    return plotted


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_line_plot(plt, fig, ax, path: str, title: Optional[str], dpi: int) -> None:
    """The common finish of the line plots: grid, legend, optional title, PNG, figure freed."""
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Figs. 6-7: class activation maps (Zhou et al. 2016)
# --------------------------------------------------------------------------------------------
def class_activation_maps(model: torch.nn.Module, inputs: torch.Tensor,
                          target: Optional[Sequence[int]] = None):
    """Plain CAM of an ``ImageClassifier`` / ``RMClassifier`` whose head is a linear ``fc`` on
    the global-average-pooled last backbone map: ``M_k = sum_c w_kc F_c`` (Zhou et al. 2016).

    Args:
        inputs: normalised ``(N, C, H, W)``.
        target: class per image; default the predicted one.

    Returns:
        ``(cams, classes, probs)``: ``(N, H, W)`` maps upsampled to the input and min-max
        normalised to [0, 1] per image, the class of each map, and its softmax probability.
    """
    import torch.nn.functional as F
    neck = getattr(model, 'neck', None)
    if neck is not None and type(neck).__name__ != 'GlobalAveragePooling':
        raise ValueError(f'CAM needs a GlobalAveragePooling neck, got {type(neck).__name__}')
    fc = getattr(model.head, 'fc', None)
    if not isinstance(fc, torch.nn.Linear):
        raise ValueError(f'CAM needs a head with a linear fc, got {type(model.head).__name__}')
    with torch.no_grad():
        feats = model.backbone(inputs)
        fmap = feats[-1] if isinstance(feats, (tuple, list)) else feats
        logits = fc(fmap.float().mean((2, 3)))
        probs = logits.softmax(1)
        cls = (probs.argmax(1) if target is None else torch.as_tensor(
            list(target), device=probs.device)).long()
        weights = fc.weight[cls].float()  # (N, C)
        cam = torch.einsum('nc,nchw->nhw', weights, fmap.float())
        cam = F.interpolate(cam[:, None], size=inputs.shape[-2:], mode='bilinear',
                            align_corners=False)[:, 0]
        lo = cam.flatten(1).min(1)[0].view(-1, 1, 1)
        hi = cam.flatten(1).max(1)[0].view(-1, 1, 1)
        cam = (cam - lo) / (hi - lo).clamp_min(1e-12)
        p = probs.gather(1, cls[:, None])[:, 0]
    return cam.cpu(), cls.cpu().tolist(), p.cpu().tolist()


def overlay_cam(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (H, W, 3 or 1) uint8 and ``cam`` (H, W) in [0, 1] -> jet overlay (H, W, 3)."""
    import matplotlib
    img = image.astype(np.float32) / 255.
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, -1)
    heat = matplotlib.colormaps['jet'](np.clip(cam, 0, 1))[..., :3]
    return np.clip((1 - alpha) * img + alpha * heat, 0, 1)


# --------------------------------------------------------------------------------------------
# Figs. 4-5: sweeps over alpha / omega
# --------------------------------------------------------------------------------------------
SWEEP_KEYS = dict(alpha='model.train_cfg.augments.alpha', omega='model.roi_head.omega')


def _dotted_get(cfg: dict, key: str):
    obj = cfg
    for part in key.split('.'):
        if isinstance(obj, (list, tuple)):
            if len(obj) != 1:
                raise KeyError(key)
            obj = obj[0]
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(key)
        obj = obj[part]
    return obj


def _default_of(param: str, cfg: dict):
    """The component default of alpha / omega when the config leaves it out."""
    import inspect
    from mmrm.models import RecursiveMixBatchAugment, RoIConsistencyHead
    model = cfg.get('model', {})
    if param == 'alpha' and any(_is_rm_augment(a) for a in _augments_of(model)):
        return inspect.signature(RecursiveMixBatchAugment).parameters['alpha'].default
    if param == 'omega' and isinstance(model.get('roi_head'), dict):
        return inspect.signature(RoIConsistencyHead).parameters['omega'].default
    return None


def work_dir_config(work_dir: str) -> str:
    """The config MMEngine dumped into a work dir (``<work_dir>/*.py``, else the newest
    ``<work_dir>/<timestamp>/vis_data/config.py``)."""
    found = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if not found:
        found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'config.py')))
    if not found:
        raise FileNotFoundError(f'no dumped config in {work_dir}')
    return max(found, key=osp.getmtime)


def best_metric(work_dir: str, metric: str = 'accuracy/top1') -> Optional[float]:
    """The highest ``metric`` logged under ``work_dir`` (MMEngine's
    ``<timestamp>/vis_data/scalars.json``, else the ``vis_data/<timestamp>.json`` logs)."""
    paths = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if not paths:
        paths = glob.glob(osp.join(work_dir, '*', 'vis_data', '*.json'))
    best = None
    for path in paths:
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and metric in record:
                    v = float(record[metric])
                    best = v if best is None else max(best, v)
    return best


def collect_sweep(work_dirs: Sequence[str], param: str = 'alpha', key: Optional[str] = None,
                  metric: str = 'accuracy/top1', log: Callable = print) -> List[dict]:
    """One record per work dir: ``value`` of the swept parameter (from the dumped config),
    ``best`` metric and ``error = 100 - best``. Work dirs without a metric are skipped."""
    from mmengine.config import Config
    key = key or SWEEP_KEYS[param]
    records = []
    for wd in work_dirs:
        cfg_path = work_dir_config(wd)
        cfg = Config.fromfile(cfg_path).to_dict()
        try:
            value = _dotted_get(cfg, key)
        except KeyError:
            value = _default_of(param, cfg)
            if value is None:
                raise ValueError(f'{wd}: the config {cfg_path} has no {key}')
        best = best_metric(wd, metric)
        if best is None:
            log(f'warning: {wd}: no {metric} logged, skipped')
            continue
        records.append(dict(work_dir=wd, value=float(value), best=best, error=100. - best))
    return records


def summarise_sweep(records: Sequence[dict]) -> List[dict]:
    """Group by value: ``n``, ``mean`` and ``std`` (sample std, 0 for one run) of the error."""
    groups = OrderedDict()
    for r in sorted(records, key=lambda r: r['value']):
        groups.setdefault(r['value'], []).append(r['error'])
    return [dict(value=v, n=len(e), mean=statistics.mean(e),
                 std=statistics.stdev(e) if len(e) > 1 else 0.)
            for v, e in groups.items()]


def format_sweep_table(summary: Sequence[dict], param: str) -> str:
    lines = [f'| {param} | runs | top-1 err mean (%) | std |', '| ---: | ---: | ---: | ---: |']
    for s in summary:
        lines.append(f"| {s['value']:g} | {s['n']} | {s['mean']:.2f} | {s['std']:.2f} |")
    return '\n'.join(lines)


def plot_sweep(summary: Sequence[dict], param: str, path: str,
               baseline: Optional[dict] = None, title: Optional[str] = None,
               size=(5.0, 3.4), dpi: int = 80) -> dict:
    """Mean +- std top-1 error against the swept value (paper Figs. 4-5); ``baseline`` (a
    summary row) is drawn as a horizontal line. Returns the plotted ``x``, ``y``, ``std``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size)
    x = [s['value'] for s in summary]
    y = [s['mean'] for s in summary]
    sd = [s['std'] for s in summary]
    line, = ax.plot(x, y, marker='o', ms=4, color='C3', label='RM')
    ax.fill_between(x, [a - b for a, b in zip(y, sd)], [a + b for a, b in zip(y, sd)],
                    color='C3', alpha=0.2, lw=0)
    if baseline is not None:
        ax.axhline(baseline['mean'], color='gray', ls='--', lw=1,
                   label=f"baseline {baseline['mean']:.2f}")
    ax.set_xlabel({'alpha': r'$\alpha$', 'omega': r'$\omega$'}.get(param, param))
    ax.set_ylabel('top-1 error (%)')
    _save_line_plot(plt, fig, ax, path, title, dpi)
    return dict(x=[float(v) for v in line.get_xdata()], y=[float(v) for v in line.get_ydata()],
                std=sd)
