"""Line plots of the analyses: effective classes (Fig. 8) and alpha / omega sweeps (Figs. 4-5)."""
from typing import Optional, Sequence

from mmrm.analysis.variants import VARIANT_NAMES

__all__ = ['pyplot', 'save_line_plot', 'plot_effective_classes', 'plot_sweep']



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
