"""The statistics of every experiment table: one place for mean / std, the paired t interval,
Holm's step-down correction over a family of contrasts and the seeds a contrast needs.

Every interval is a paired one (DESIGN.md §6: runs of two methods are matched by seed), from
``scipy.stats``. With ``m`` contrasts in a family, Holm's procedure sorts their p-values
``p_(1) <= ... <= p_(m)`` and rejects ``H_(i)`` when ``p_(j) <= alpha / (m - j + 1)`` for every
``j <= i``; the adjusted p-value is ``max_{j <= i} min(1, (m - j + 1) p_(j))``. The interval
reported with a contrast tested at step ``i`` is the paired t interval at confidence
``1 - alpha / (m - i + 1)``, the level at which Holm tests it: it excludes 0 exactly when that
step's test rejects.
"""
import math
import statistics
from typing import Dict, List, Sequence, Tuple

__all__ = ['mean_std', 'paired_t', 'holm', 'holm_intervals', 'seeds_for_power',
           'sd_upper_limit', 'pooled_sd']


def mean_std(values: Sequence[float]) -> tuple:
    """``(mean, sample std)`` of ``values``; the std of one value is 0."""
    values = list(values)
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.


def paired_t(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple:
    """``(mean, low, high, pvalue)`` of ``a - b`` over paired values: the paired t interval of
    ``scipy.stats.ttest_rel(a, b).confidence_interval(confidence)`` (mean difference
    ± t(n - 1) x sd / sqrt(n)). ``low``, ``high``, ``pvalue`` are None for fewer than 2 pairs;
    with no spread in the differences t is undefined and the interval is the point."""
    diffs = [x - y for x, y in zip(a, b)]
    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return mean, None, None, None
    if max(diffs) == min(diffs):
        return mean, mean, mean, 0. if diffs[0] else 1.
    from scipy import stats
    test = stats.ttest_rel(a, b)
    ci = test.confidence_interval(confidence)
    return mean, float(ci.low), float(ci.high), float(test.pvalue)


def holm(pvalues: Sequence[float]) -> Tuple[List[float], List[int]]:
    """Holm's adjusted p-values (in the input order) and each p-value's step (1 = smallest)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, steps = [0.] * m, [0] * m
    running = 0.
    for step, i in enumerate(order, 1):
        running = max(running, min(1., (m - step + 1) * pvalues[i]))
        adjusted[i], steps[i] = running, step
    return adjusted, steps


def holm_intervals(pairs: Dict[str, Tuple[Sequence[float], Sequence[float]]],
                   alpha: float = 0.05) -> Dict[str, Dict]:
    """Holm over a family of paired contrasts ``{name: (a, b)}`` (``a - b`` per seed): per
    contrast ``n``, ``mean``, ``p`` (paired t), ``p_holm``, ``step``, ``confidence`` and the
    interval ``(low, high)`` at that confidence, and ``held`` (``p_holm < alpha``)."""
    names = list(pairs)
    tests = {k: paired_t(*pairs[k]) for k in names}
    if any(t[3] is None for t in tests.values()):
        short = [k for k in names if tests[k][3] is None]
        raise ValueError(f'contrasts {short} have fewer than 2 pairs')
    adjusted, steps = holm([tests[k][3] for k in names])
    out = {}
    for k, p_holm, step in zip(names, adjusted, steps):
        confidence = 1 - alpha / (len(names) - step + 1)
        mean, low, high, p = paired_t(*pairs[k], confidence=confidence)
        out[k] = dict(n=len(pairs[k][0]), mean=mean, low=low, high=high, p=p, p_holm=p_holm,
                      step=step, confidence=confidence, held=p_holm < alpha)
    return out


def seeds_for_power(sd: float, delta: float, alpha: float = 0.05, power: float = 0.8,
                    most: int = 1000) -> int:
    """The fewest pairs ``n`` at which a two-sided paired t test at level ``alpha`` detects a
    true mean difference ``delta`` with probability ``power``, when the differences have
    standard deviation ``sd`` (noncentral t with ``n - 1`` degrees of freedom and
    noncentrality ``delta sqrt(n) / sd``)."""
    from scipy import stats
    if not (sd > 0 and delta > 0 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f'need sd > 0, delta > 0, alpha and power in (0, 1); got sd={sd}, '
                         f'delta={delta}, alpha={alpha}, power={power}')
    for n in range(2, most + 1):
        df, nc = n - 1, delta * math.sqrt(n) / sd
        crit = stats.t.ppf(1 - alpha / 2, df)
        if stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= power:
            return n
    raise ValueError(f'more than {most} pairs needed')


def sd_upper_limit(sd: float, df: int, confidence: float = 0.8) -> float:
    """The one-sided upper confidence limit of a standard deviation estimated with ``df``
    degrees of freedom, ``sd sqrt(df / chi2_{1 - confidence}(df))``: the pilot-study sample
    size rule (Browne 1995) that guards against a pilot's sd that came out low."""
    from scipy import stats
    return sd * math.sqrt(df / stats.chi2.ppf(1 - confidence, df))


def pooled_sd(groups: Sequence[Sequence[float]]) -> Tuple[float, int]:
    """``(pooled sample sd, degrees of freedom)`` of several samples around their own means."""
    ss = sum(sum((x - statistics.mean(g)) ** 2 for x in g) for g in groups)
    df = sum(len(g) - 1 for g in groups)
    return math.sqrt(ss / df), df
