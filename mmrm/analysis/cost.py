"""Training cost of RM against baseline, Mixup and CutMix (paper Table 10).

Parameters at training and deployment, FLOPs, peak memory (:mod:`.memory`), step time
(:mod:`.timing`) and, optionally, a per-operator profile (:mod:`.profiling`) and the step time
under ``torch.compile`` (:mod:`.compile_stats`) of the four variants of one network
(:mod:`.variants`). ``tools/analysis_tools/rm_cost_report.py`` prints it.
"""
import copy
import logging
import statistics
from collections import OrderedDict
from typing import Callable, Optional, Sequence

import torch

from mmrm.utils.config import to_plain
from mmrm.utils.convert import convert_rm_checkpoint
from .compile_stats import CompileStats, compile_train_step
from .memory import measure_memory
from .profiling import profile_train_steps
from .timing import build_optim_wrapper, make_batch_factory, time_train_steps
from .variants import (VARIANT_NAMES, build_model, derive_variants, input_channels_of,
                       num_classes_of)

__all__ = [
    'count_params', 'deploy_state_dict', 'deploy_params', 'count_flops', 'cost_report',
    'format_cost_table', 'format_compile_table'
]

#: suffix of the compiled twin of a variant in the timing
COMPILED = ':compiled'
#: the variants timed compiled too. Models of one process share dynamo's per-function
#: recompile limit (8) wherever they share code (train_step, loss, the optimizer's step): three
#: stay within it, as one model of a real run does; Mixup would make a fourth.
COMPILED_VARIANTS = ('baseline', 'cutmix', 'rm')


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def deploy_state_dict(model: torch.nn.Module) -> dict:
    """The state dict that ``tools/model_converters/rm2cls.py`` would export."""
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


def cost_report(cfg, config_path: Optional[str] = None, batch: int = 8,
                shape: Optional[Sequence[int]] = None, repeats: int = 10, warmup: int = 1,
                device: Optional[str] = None, memory: str = 'auto', memory_steps: int = 3,
                threads: Optional[int] = None, mixup: Optional[dict] = None,
                cutmix: Optional[dict] = None, profile_steps: int = 0,
                compile_cfg: Optional[dict] = None, compile_warmup: int = 3,
                log: Callable = print) -> dict:
    """Everything of Table 10 for the four variants of ``cfg`` (see :func:`derive_variants`).

    Memory is measured first, in child processes, before this process runs any torch op.
    ``memory``: 'fork' (fast), 'spawn' (a new interpreter per variant), 'auto' (fork on CPU,
    spawn on CUDA, where a forked child cannot use CUDA after the parent touched it) or 'none'.
    ``profile_steps`` > 0 also profiles that many steps of RM and CutMix
    (:func:`profile_train_steps`, after the timing) into ``profiles``.
    ``compile_cfg`` (e.g. ``dict(backend='inductor')``) also times a twin of the
    :data:`COMPILED_VARIANTS` whose ``train_step`` is compiled as MMEngine's ``compile=True``
    does, interleaved with the eager steps on the same batches, after ``compile_warmup``
    untimed rounds of the twins (where the compiling happens); their rows then also hold
    ``step_ms_compiled`` and ``compile`` (graphs, breaks and what was compiled after the
    warm-up, :class:`CompileStats`).
    Returns a dict: ``rows`` (per variant: ``params_train``, ``params_deploy``, ``flops``,
    ``memory_mb``, ``step_ms`` (median), ``step_ms_all``), ``ratios`` and the settings.
    """
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    variants, sources = derive_variants(cfg, config_path, mixup=mixup, cutmix=cutmix)
    if shape is None:
        shape = (input_channels_of(variants['rm']), 224, 224)
    shape = tuple(int(v) for v in shape)
    optim_cfg = to_plain(cfg.get('optim_wrapper')) if cfg.get('optim_wrapper') else None
    scope_cfg = dict(default_scope=cfg.get('default_scope', 'mmpretrain'),
                     custom_imports=to_plain(cfg.get('custom_imports')) or dict(imports=['mmrm']))
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
    timed, stats = OrderedDict(), OrderedDict()
    if repeats > 0 or profile_steps > 0:
        wrappers = {name: build_optim_wrapper(m, optim_cfg, device)
                    for name, m in models.items()}
        fresh = make_batch_factory(batch, shape, num_classes_of(variants['rm']))
    if repeats > 0:
        for name, model in models.items():
            timed[name] = model
            if compile_cfg is not None and name in COMPILED_VARIANTS:
                twin = timed[name + COMPILED] = compile_train_step(copy.deepcopy(model),
                                                                   **compile_cfg)
                wrappers[name + COMPILED] = build_optim_wrapper(twin, optim_cfg, device)
                stats[name + COMPILED] = CompileStats()
        if stats:  # interleaved too, so what one model's compiling does to another's is in it
            log(f'[compile] {compile_warmup} untimed rounds of {" ".join(stats)} '
                f'({compile_cfg})')
            for _ in range(compile_warmup):
                for key, st in stats.items():
                    with st.step():
                        timed[key].train_step(fresh(), wrappers[key])
        log(f'[time] {warmup} warm-up + {repeats} interleaved rounds of '
            f'{" ".join(timed)} ({device})')
        times = time_train_steps(timed, wrappers, fresh, repeats, warmup, device,
                                 around={k: s.step for k, s in stats.items()})
    if profile_steps > 0:
        log(f'[profile] {profile_steps} steps of rm and cutmix ({device})')
        profiles = profile_train_steps(
            OrderedDict((k, models[k]) for k in ('rm', 'cutmix')), wrappers, fresh,
            profile_steps, device)
    for name in models:
        ts = times[name] if times else []
        rows[name]['step_ms'] = statistics.median(ts) * 1e3 if ts else None
        rows[name]['step_ms_all'] = [t * 1e3 for t in ts]
        if name + COMPILED in stats:
            tc = times[name + COMPILED]
            rows[name]['step_ms_compiled'] = statistics.median(tc) * 1e3
            rows[name]['step_ms_compiled_all'] = [t * 1e3 for t in tc]
            st = stats[name + COMPILED]
            rows[name]['compile'] = dict(st.summary(compile_warmup),
                                         recompile_reasons=st.recompile_reasons[:20])

    def ratio(key, a, b):
        va, vb = rows[a].get(key), rows[b].get(key)
        return va / vb if va is not None and vb else None

    ratios = OrderedDict()
    for key in ('step_ms', 'memory_mb', 'params_train', 'params_deploy', 'flops'):
        ratios[f'{key} rm/cutmix'] = ratio(key, 'rm', 'cutmix')
        ratios[f'{key} rm/baseline'] = ratio(key, 'rm', 'baseline')
    if times:  # robust to drifting load: median over rounds of the per-round ratio
        def paired(a, b):
            return statistics.median(x / y for x, y in zip(times[a], times[b]))

        for other in ('cutmix', 'baseline'):
            ratios[f'step rm/{other} (median of per-round ratios)'] = paired('rm', other)
        if stats:
            for other in ('cutmix', 'baseline'):
                ratios[f'step compiled rm/{other} (median of per-round ratios)'] = paired(
                    'rm' + COMPILED, other + COMPILED)
            for name in COMPILED_VARIANTS:
                ratios[f'step {name} compiled/eager (median of per-round ratios)'] = paired(
                    name + COMPILED, name)
            ratios['compiled/eager: rm - baseline'] = (
                ratios['step rm compiled/eager (median of per-round ratios)']
                - ratios['step baseline compiled/eager (median of per-round ratios)'])
    return dict(rows=rows, ratios=ratios, batch=batch, shape=list(shape), device=device,
                repeats=repeats, warmup=warmup, memory_mode=memory, memory_steps=memory_steps,
                memory_measure=('torch.cuda.max_memory_allocated' if mem_key == 'cuda_peak_mb'
                                else 'peak RSS growth of a fresh child over its start RSS'),
                augment_sources={k: [s, to_plain(a)] for k, (s, a) in sources.items()},
                deploy_loads_into_baseline=deploy_loads, threads=torch.get_num_threads(),
                profiles=profiles, compile_cfg=compile_cfg,
                compile_warmup=compile_warmup if stats else None)


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


def format_compile_table(report: dict) -> str:
    """Markdown table of the compiled twins of :func:`cost_report` (``compile_cfg`` given)."""
    w = report['compile_warmup']
    lines = [
        f'| variant | step eager (ms) | step compiled (ms) | compiled / eager | graphs | graph '
        f'breaks | frames compiled after step {w} | recompiles after step {w} |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
    ]
    for name, row in report['rows'].items():
        if 'compile' not in row:
            continue
        c = row['compile']
        ratio = report['ratios'][f'step {name} compiled/eager (median of per-round ratios)']
        lines.append(f"| {row['name']} | {row['step_ms']:.2f} | {row['step_ms_compiled']:.2f} "
                     f"| {ratio:.4f} | {c['graphs']} | {c['breaks']} "
                     f"| {c[f'frames after step {w}']} | {c[f'recompiles after step {w}']} |")
    return '\n'.join(lines)
