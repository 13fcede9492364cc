"""Plots of the analyses: effective classes (Fig. 8), alpha / omega sweeps (Figs. 4-5) and the
offline Tables 1 / 6."""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

from mmrm.analysis.variants import VARIANT_NAMES

__all__ = ['pyplot', 'save_line_plot', 'plot_effective_classes', 'plot_sweep', 'plot_comparison',
           'plot_contrasts']


def pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_line_plot(plt, fig, ax, path: str, title: Optional[str], dpi: int) -> None:
    """The common finish of the line plots: grid, legend, optional title, PNG, figure freed."""
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_effective_classes(result: dict, thresholds: Sequence[float], path: str,
                           title: Optional[str] = None, size=(5.0, 3.4), dpi: int = 80):
    """Line plot (log-x threshold, y mean effective classes), one line per method. Returns the
    plotted ``{method: (x, y)}``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size)
    plotted = {}
    for name, values in result.items():
        line, = ax.plot(list(thresholds), values, marker='o', ms=3,
                        label=VARIANT_NAMES.get(name, name).lstrip('+ '))
        plotted[name] = (list(line.get_xdata()), list(line.get_ydata()))
    ax.set_xscale('log')
    ax.set_xlabel('threshold')
    ax.set_ylabel('effective classes (mean)')
    save_line_plot(plt, fig, ax, path, title, dpi)
    return plotted


def plot_sweep(summary: Sequence[dict], param: str, path: str,
               baseline: Optional[dict] = None, title: Optional[str] = None,
               size=(5.0, 3.4), dpi: int = 80) -> dict:
    """Mean +- std top-1 error against the swept value (paper Figs. 4-5); ``baseline`` (a
    summary row) is drawn as a horizontal line. Returns the plotted ``x``, ``y``, ``std``."""
    plt = pyplot()
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
    save_line_plot(plt, fig, ax, path, title, dpi)
    return dict(x=[float(v) for v in line.get_xdata()], y=[float(v) for v in line.get_ydata()],
                std=sd)


def plot_comparison(rows: Sequence[dict], path: str, dpi: int = 90) -> dict:
    """The offline Tables 1 / 6 as horizontal bars, one row per method: our test error after the
    last epoch (mean with its 95 % Student-t interval, each seed a dot) beside the paper's
    Table 1 (CIFAR-10, PyramidNet-200) and Table 6 (ImageNet, ResNet-50) errors.
    ``rows`` are :func:`mmrm.experiments.compare_report.summarise` rows. Returns the plotted means and
    interval half-widths."""
    import math
    import statistics

    from scipy import stats
    plt = pyplot()
    names = [r['method'] for r in rows]
    means = [r['test_last_mean'] for r in rows]
    half = [stats.t.ppf(0.975, len(r['test_last']) - 1) * statistics.stdev(r['test_last']) /
            math.sqrt(len(r['test_last'])) if len(r['test_last']) > 1 else 0. for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 0.28 * len(rows) + 1.2), sharey=True,
                             gridspec_kw=dict(width_ratios=[2, 1, 1]))
    y = list(range(len(rows)))
    colors = ['C3' if n.startswith('rm') else 'C0' for n in names]
    axes[0].barh(y, means, xerr=half, color=colors, alpha=0.75, capsize=3)
    for i, r in enumerate(rows):
        axes[0].scatter(r['test_last'], [i] * len(r['test_last']), color='black', s=6, zorder=3)
    lo = min(min(min(r['test_last']), m - h) for r, m, h in zip(rows, means, half))
    hi = max(max(max(r['test_last']), m + h) for r, m, h in zip(rows, means, half))
    axes[0].set_xlim(max(0., lo - 0.1 * (hi - lo)), hi + 0.05 * (hi - lo))
    axes[0].set_xlabel('Fashion-MNIST test err. (%), 95 % CI')
    for ax, table in zip(axes[1:], ('Table 1', 'Table 6')):
        vals = [r['paper'].get(table) for r in rows]
        shown = [(i, v) for i, v in enumerate(vals) if v is not None]
        ax.barh([i for i, _ in shown], [v for _, v in shown],
                color=[colors[i] for i, _ in shown], alpha=0.5)
        if shown:
            vs = [v for _, v in shown]
            ax.set_xlim(min(vs) - 0.3 * (max(vs) - min(vs)) - 0.1, max(vs) + 0.1)
        ax.set_xlabel(f'paper {table} err. (%)')
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names, fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return dict(means=means, half=half)


def plot_contrasts(arms: Dict[str, Dict], path: str, dpi: int = 90) -> int:
    """The ranking study's contrasts, one panel an arm and one row a contrast: the mean paired
    difference ``err(other) - err(RM)`` (points; positive: RM better) with its Holm interval
    (:func:`mmrm.experiments.stats.holm_intervals` entries in ``arms[arm]['tests']``, rows
    labelled ``arms[arm]['labels']``). Returns the number of rows drawn."""
    plt = pyplot()
    shown = [a for a in arms if arms[a]['tests']]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(4.2 * max(1, len(shown)), 2.8),
                             squeeze=False)
    rows = 0
    for ax, arm in zip(axes[0], shown):
        tests, labels = arms[arm]['tests'], arms[arm]['labels']
        names = [n for n in labels if n in tests]
        y = list(range(len(names)))
        for i, n in enumerate(names):  # green: RM better, red: RM worse, grey: not resolved
            t = tests[n]
            color = ('C2' if t['mean'] > 0 else 'C3') if t['held'] else 'C7'
            ax.errorbar([t['mean']], [i], xerr=[[t['mean'] - t['low']], [t['high'] - t['mean']]],
                        fmt='o', color=color, ms=4, capsize=3)
        ax.axvline(0, color='black', lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([labels[n] for n in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel('err(other) - err(RM), points', fontsize=8)
        rows += len(names)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return rows
