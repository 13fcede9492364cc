"""The ranking study's report (``docs/en/results/ranking.md``): per arm, the methods' errors,
the Holm-corrected contrasts with their verdicts, the resize-fill test P1 and each arm's time,
a function of the committed records alone (``results/fashion_mnist/<regime>/``), so that
``tools/analysis_tools/rank_mixers.py --report DIR`` regenerates it bit for bit.

An arm whose runs are not all in is reported as such: its tables say ``n`` of the
preregistered seeds and its verdicts are marked *interim* (they decide nothing until the arm
is complete).
"""
import statistics
from typing import Dict, List, Optional, Sequence

from .ranking import ALPHA, ARMS, SECOND_ARM_CANDIDATES, choose_second_regime, errors_by_seed
from .run import fmt_time
from .stats import holm_intervals, mean_std

__all__ = ['arm_regime', 'arm_records', 'arm_summary', 'resize_fill_test', 'format_report',
           'plot_report']


def arm_regime(arm: str, records_by_regime: Dict[str, Sequence[Dict]]) -> Optional[str]:
    """The regime of ``arm``; the not-tiny arm's by the preregistered rule (None until the
    selection runs are in)."""
    if ARMS[arm]['regime'] is not None:
        return ARMS[arm]['regime']
    return choose_second_regime(records_by_regime)[0]


def arm_records(arm: str, records_by_regime: Dict[str, Sequence[Dict]]) -> List[Dict]:
    """The records of ``arm``: its regime's, of its methods and its preregistered seeds."""
    regime = arm_regime(arm, records_by_regime)
    spec = ARMS[arm]
    return [r for r in records_by_regime.get(regime, ()) if r['result']['method'] in
            spec['methods'] and r['result']['seed'] in spec['seeds']]


def arm_summary(arm: str, records: Sequence[Dict]) -> Dict:
    """Per method ``(n, mean, std)`` of last-epoch and best-on-val test error; per contrast
    the Holm-corrected paired test over the seeds both methods have (None below 2 pairs);
    ``complete``: every method has every preregistered seed; ``seconds``: wall time of the
    arm's runs (each run's attempts summed)."""
    spec = ARMS[arm]
    last, best = errors_by_seed(records, 'test_last'), errors_by_seed(records, 'test_best')
    methods = {m: dict(n=len(last.get(m, {})),
                       last=mean_std(last[m].values()) if last.get(m) else None,
                       best=mean_std(best[m].values()) if best.get(m) else None)
               for m in spec['methods']}
    pairs = {}
    for name, method, other in spec['hypotheses']:
        seeds = sorted(set(last.get(method, {})) & set(last.get(other, {})))
        if len(seeds) >= 2:  # err(other) - err(method): positive when RM is better
            pairs[name] = ([last[other][s] for s in seeds], [last[method][s] for s in seeds])
    tests = holm_intervals(pairs, ALPHA) if len(pairs) == len(spec['hypotheses']) else {}
    complete = all(v['n'] == len(spec['seeds']) for v in methods.values())
    return dict(methods=methods, tests=tests, complete=complete,
                seconds=sum(r['wall_s'] for r in records), runs=len(records))


def resize_fill_test(arm1: Sequence[Dict], arm3: Sequence[Dict]) -> Optional[Dict]:
    """P1: is H6, ``err(rm-no-rs) - err(rm)``, larger at 56 px (arm 3) than at 28 px (arm
    1)? Welch's t on the per-seed differences, one-sided; None below 2 seeds an arm."""
    from scipy import stats

    def h6(records):
        err = errors_by_seed(records)
        seeds = sorted(set(err.get('rm', {})) & set(err.get('rm-no-rs', {})))
        return [err['rm-no-rs'][s] - err['rm'][s] for s in seeds]
    small, large = h6(arm1), h6(arm3)
    if len(small) < 2 or len(large) < 2:
        return None
    test = stats.ttest_ind(large, small, equal_var=False, alternative='greater')
    return dict(n28=len(small), n56=len(large), mean28=statistics.mean(small),
                mean56=statistics.mean(large), t=float(test.statistic), p=float(test.pvalue),
                held=float(test.pvalue) < ALPHA)


def _verdict(test: Dict, interim: bool) -> str:
    word = ('holds' if test['mean'] > 0 else 'contradicted') if test['held'] else 'not resolved'
    return f'{word} (interim)' if interim else word


def _arm_lines(arm: str, regime: Optional[str], summary: Dict) -> List[str]:
    spec = ARMS[arm]
    want = len(spec['seeds'])
    state = 'complete' if summary['complete'] else 'interim: runs still missing'
    lines = [f'### Arm {arm} (`{regime}`, seeds {spec["seeds"][0]}-{spec["seeds"][-1]}; {state})',
             '', '| method | seeds | test err, last epoch (%) | test err, best-on-val epoch (%) |',
             '| --- | ---: | ---: | ---: |']
    for m, v in summary['methods'].items():
        cell = (lambda ms: '—' if ms is None else f'{ms[0]:.2f} ± {ms[1]:.2f}')
        lines.append(f'| {m} | {v["n"]} / {want} | {cell(v["last"])} | {cell(v["best"])} |')
    lines += ['', '| hypothesis | contrast | pairs | err(other) - err(RM) [Holm interval] | '
              'level | p | p (Holm) | verdict |', '| --- | --- | ---: | ---: | ---: | ---: | '
              '---: | --- |']
    for name, method, other in spec['hypotheses']:
        t = summary['tests'].get(name)
        if t is None:
            lines.append(f'| {name} | {method} vs {other} | — | — | — | — | — | not run yet |')
            continue
        lines.append(f'| {name} | {method} vs {other} | {t["n"]} | {t["mean"]:+.2f} '
                     f'[{t["low"]:+.2f}, {t["high"]:+.2f}] | {100 * t["confidence"]:.2f} % | '
                     f'{t["p"]:.4f} | {t["p_holm"]:.4f} | '
                     f'{_verdict(t, not summary["complete"])} |')
    lines += ['', f'Time: {summary["runs"]} runs, {fmt_time(summary["seconds"])} of run time '
              '(each run\'s attempts summed; two single-threaded runs at a time).']
    return lines


def format_report(records_by_regime: Dict[str, Sequence[Dict]],
                  probe: Optional[Dict] = None) -> str:
    """The results section of the ranking page, from the records of every regime and P2's
    probe (:func:`mmrm.experiments.history_probe.run_probe`'s output, if any)."""
    lines = ['Positive differences: RM has the lower last-epoch test error. The interval of a '
             'contrast is at the level Holm tests it (`level`); a hypothesis *holds* when its '
             'Holm-adjusted p is below 0.05 with the paper\'s sign.', '']
    chosen, missing = choose_second_regime(records_by_regime)
    lines.append('**The not-tiny arm\'s regime** (rule: CutMix ahead of the baseline by >= 2 '
                 'baseline stds of last-epoch val error, seeds 0-2): ' + (
                     f'`{chosen}`' if chosen else f'not chosen yet (`{missing}`\'s selection '
                     'runs are missing)') + f'; candidates in order: '
                 f'{", ".join(f"`{c}`" for c in SECOND_ARM_CANDIDATES)}.')
    lines.append('')
    records = {}
    for arm in ARMS:
        regime = arm_regime(arm, records_by_regime)
        records[arm] = arm_records(arm, records_by_regime) if regime else []
        if regime is None or not records[arm]:
            lines += [f'### Arm {arm}', '', 'No run yet.', '']
            continue
        lines += _arm_lines(arm, regime, arm_summary(arm, records[arm])) + ['']
    p1 = resize_fill_test(records['scarce-20'], records['resize-56px'])
    lines.append('**P1** (H6 larger at 56 px than at 28 px, Welch, one-sided): ' + (
        'not testable yet (fewer than 2 seeds in an arm).' if p1 is None else
        f'H6 {p1["mean28"]:+.2f} at 28 px ({p1["n28"]} seeds), {p1["mean56"]:+.2f} at 56 px '
        f'({p1["n56"]} seeds); t {p1["t"]:.2f}, p {p1["p"]:.4f}: '
        f'{"holds" if p1["held"] else "does not hold"}.'))
    lines += ['', '**P2** (top-1 accuracy of RM\'s trained networks on the test images shrunk '
              'into a centred box alone, nearest, on an image of the mean; by relative box '
              'side; mean ± std (models)):', '']
    if probe is None:
        lines.append('Not probed yet.')
    else:
        from .history_probe import format_probe
        lines.append(format_probe(probe))
    return '\n'.join(lines) + '\n'


def plot_report(records_by_regime: Dict[str, Sequence[Dict]], path: str) -> int:
    """The figure of the contrasts (:func:`mmrm.visualization.plots.plot_contrasts`)."""
    from mmrm.visualization.plots import plot_contrasts
    arms = {}
    for arm, spec in ARMS.items():
        regime = arm_regime(arm, records_by_regime)
        records = arm_records(arm, records_by_regime) if regime else []
        tests = arm_summary(arm, records)['tests'] if records else {}
        arms[f'{arm} ({regime})'] = dict(tests=tests, labels={
            n: f'{n}: RM vs {other}' for n, _, other in spec['hypotheses']})
    return plot_contrasts(arms, path)
