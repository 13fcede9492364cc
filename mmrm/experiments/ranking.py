"""The ranking study (issue #34, preregistered in ``docs/en/results/ranking.md``): does RM beat
the other mixers, and does resizing the history into the box help?

The study has three arms, each a regime of :data:`mmrm.experiments.compare.REGIMES` with its
methods, seeds and family of contrasts. A contrast ``(method, other)`` is the paired difference
of last-epoch test error, ``err(other) - err(method)`` per seed: positive when ``method`` (RM)
has the lower error. Holm's correction runs over the contrasts of one arm
(:func:`mmrm.experiments.stats.holm_intervals`). The number of seeds of the scarce-20 arm came
from :func:`power_estimate` on the records of the three seeds that existed before the study.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from .stats import pooled_sd, sd_upper_limit, seeds_for_power

__all__ = ['HYPOTHESES', 'RANKED_METHODS', 'RESIZE_HYPOTHESES', 'ARMS', 'SECOND_ARM_CANDIDATES',
           'PILOT_SEEDS', 'DELTA', 'ALPHA', 'POWER', 'SD_CONFIDENCE', 'errors_by_seed',
           'pilot_differences', 'power_estimate', 'format_power', 'choose_second_regime']

#: the preregistered contrasts: (name, method, other)
HYPOTHESES: Tuple[Tuple[str, str, str], ...] = (
    ('H1', 'rm', 'cutmix'),
    ('H2', 'rm', 'mixup'),
    ('H3', 'rm', 'manifold-mixup'),
    ('H4', 'rm', 'feature-cutmix'),
    ('H5', 'rm', 'baseline'),
    ('H6', 'rm', 'rm-no-rs'),
)
#: the methods every contrast of :data:`HYPOTHESES` needs
RANKED_METHODS = ('baseline', 'mixup', 'cutmix', 'manifold-mixup', 'feature-cutmix', 'rm',
                  'rm-no-rs')
#: the resize-fill arm's contrasts (the same names as in :data:`HYPOTHESES`)
RESIZE_HYPOTHESES = tuple(h for h in HYPOTHESES if h[0] in ('H1', 'H5', 'H6'))
#: the not-tiny arm: the first candidate whose val errors meet the selection rule (CutMix ahead
#: of the baseline by >= 2 baseline stds, 3 seeds each) is the arm's regime
SECOND_ARM_CANDIDATES = ('scarce-100', 'scarce-500')
#: the selection rule: CutMix's lead over the baseline on val, in baseline stds
SELECTION_GAIN = 2.

#: arm name: (regime, methods, seeds, hypotheses); the second arm's regime is filled in by the
#: selection (``None`` until then)
ARMS: Dict[str, Dict] = {
    'scarce-20': dict(regime='scarce-20', methods=RANKED_METHODS, seeds=tuple(range(19)),
                      hypotheses=HYPOTHESES),
    'not-tiny': dict(regime=None, methods=RANKED_METHODS, seeds=tuple(range(5)),
                     hypotheses=HYPOTHESES),
    'resize-56px': dict(regime='scarce-20-56px', methods=('baseline', 'cutmix', 'rm', 'rm-no-rs'),
                        seeds=tuple(range(5)), hypotheses=RESIZE_HYPOTHESES),
}
#: the seeds of the pilot (the Tables 1 / 6 runs that existed before the study)
PILOT_SEEDS = (0, 1, 2)
#: the difference the study is sized to resolve (points of test error), its level and power
DELTA, ALPHA, POWER = 0.5, 0.05, 0.8
#: the sd the size is computed from: its one-sided upper confidence limit at this level
SD_CONFIDENCE = 0.8


def errors_by_seed(records: Sequence[Dict],
                   field: str = 'test_last') -> Dict[str, Dict[int, float]]:
    """``{method: {seed: error in %}}`` of comparison records (``100 - accuracy``)."""
    out: Dict[str, Dict[int, float]] = {}
    for r in records:
        res = r['result']
        out.setdefault(res['method'], {})[res['seed']] = 100. - res[field]
    return out


def pilot_differences(records: Sequence[Dict], seeds: Sequence[int] = PILOT_SEEDS,
                      hypotheses=HYPOTHESES) -> Dict[str, List[float]]:
    """Per contrast, the paired differences ``err(other) - err(method)`` on ``seeds``."""
    err = errors_by_seed(records)
    out = {}
    for name, method, other in hypotheses:
        missing = [s for s in seeds if s not in err.get(method, {}) or s not in err.get(other, {})]
        if missing:
            raise ValueError(f'{name} ({method} vs {other}): no records of seeds {missing}')
        out[name] = [err[other][s] - err[method][s] for s in seeds]
    return out


def power_estimate(records: Sequence[Dict], seeds: Sequence[int] = PILOT_SEEDS) -> Dict:
    """How many seeds resolve :data:`DELTA` at :data:`ALPHA` with :data:`POWER`, from the
    pilot's paired differences: their sd pooled over the contrasts (each around its own mean),
    its upper confidence limit at :data:`SD_CONFIDENCE`, and the seeds that sd needs; beside
    it, what each contrast's own sd and the pooled sd alone would need, and what Holm's first
    step (level ``ALPHA / m``) would."""
    diffs = pilot_differences(records, seeds)
    sd, df = pooled_sd(list(diffs.values()))
    upper = sd_upper_limit(sd, df, SD_CONFIDENCE)
    m = len(diffs)
    per = {}
    for k, d in diffs.items():
        s = pooled_sd([d])[0]
        per[k] = dict(mean=sum(d) / len(d), sd=s, seeds=seeds_for_power(s, DELTA, ALPHA, POWER))
    return dict(pilot_seeds=list(seeds), pooled_sd=sd, df=df, sd_upper=upper,
                seeds=seeds_for_power(upper, DELTA, ALPHA, POWER),
                seeds_pooled_sd=seeds_for_power(sd, DELTA, ALPHA, POWER),
                seeds_holm_first_step=seeds_for_power(upper, DELTA, ALPHA / m, POWER),
                contrasts=per)


def format_power(est: Dict) -> str:
    """The preregistration's power paragraph as a Markdown table."""
    lines = ['| contrast | pilot mean (points) | pilot sd | seeds for 0.5 at this sd |',
             '| --- | ---: | ---: | ---: |']
    for name, method, other in HYPOTHESES:
        c = est['contrasts'][name]
        lines.append(f'| {name}: {method} vs {other} | {c["mean"]:+.2f} | {c["sd"]:.3f} | '
                     f'{c["seeds"]} |')
    lines.append(f'| pooled ({est["df"]} df) | | {est["pooled_sd"]:.3f} | '
                 f'{est["seeds_pooled_sd"]} |')
    lines.append(f'| pooled, {int(SD_CONFIDENCE * 100)} % upper limit | | '
                 f'{est["sd_upper"]:.3f} | **{est["seeds"]}** |')
    lines.append(f'| the same at Holm\'s first step (alpha {ALPHA}/{len(HYPOTHESES)}) | | '
                 f'{est["sd_upper"]:.3f} | {est["seeds_holm_first_step"]} |')
    return '\n'.join(lines)


def choose_second_regime(records_by_regime: Dict[str, Sequence[Dict]]) -> Tuple[Optional[str],
                                                                                Optional[str]]:
    """The not-tiny arm's regime by the preregistered rule: ``(regime, None)`` once chosen,
    ``(None, candidate)`` while ``candidate``'s selection runs (baseline and CutMix, seeds
    0-2) are missing. The first candidate whose CutMix leads the baseline by >= 2 baseline
    stds of val error is chosen; if none does, the first candidate."""
    from .compare_report import selection_gain
    for regime in SECOND_ARM_CANDIDATES:
        sel = selection_gain(records_by_regime.get(regime, ()))
        # the rule reads baseline and CutMix only: other methods' seeds do not count
        if sel is None or min(len(sel['values'][m]) for m in ('baseline', 'cutmix')) < 3:
            return None, regime
        if sel['gain'] is not None and sel['gain'] >= SELECTION_GAIN:
            return regime, None
    return SECOND_ARM_CANDIDATES[0], None
