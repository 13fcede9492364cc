"""The ranking study's sizing (mmrm.experiments.ranking): the preregistered number of seeds is
the power estimate on the committed pilot records, and the page says it verbatim."""
import pytest

from mmrm.experiments.compare_report import load_records
from mmrm.experiments.ranking import ARMS, format_power, power_estimate
from tests.utils import REPO_ROOT, load_tool


def test_the_preregistered_seed_count_is_the_power_estimate_on_the_pilot():
    records = load_records(str(REPO_ROOT / 'results/fashion_mnist/scarce-20'))
    est = power_estimate(records)
    assert est['pilot_seeds'] == [0, 1, 2] and est['df'] == 12
    assert est['seeds'] == 19 and len(ARMS['scarce-20']['seeds']) == 19 >= 10
    page = (REPO_ROOT / 'docs/en/results/ranking.md').read_text()
    assert format_power(est) in page
    assert '**19 seeds** (0-18)' in page


def test_the_power_command_prints_that_table(capsys):
    tool = load_tool('tools/analysis_tools/rank_mixers.py')
    assert tool.main(['--power', str(REPO_ROOT / 'results/fashion_mnist')]) == 0
    records = load_records(str(REPO_ROOT / 'results/fashion_mnist/scarce-20'))
    assert format_power(power_estimate(records)) in capsys.readouterr().out


def _selection_record(regime, method, seed, val_acc):
    return dict(result=dict(method=method, seed=seed, regime=regime, val_last=val_acc))


def test_the_second_arm_takes_the_first_candidate_that_meets_the_rule():
    from mmrm.experiments.ranking import choose_second_regime

    def records(regime, base, cut):  # val accuracies of seeds 0-2
        return ([_selection_record(regime, 'baseline', s, a) for s, a in enumerate(base)] +
                [_selection_record(regime, 'cutmix', s, a) for s, a in enumerate(cut)])

    # baseline err 20 +- 1; CutMix 17.5: 2.5 stds ahead -> scarce-100
    good = records('scarce-100', (80., 81., 79.), (82.5, 82.5, 82.5))
    assert choose_second_regime({'scarce-100': good}) == ('scarce-100', None)
    # the arm's other methods, started on fewer seeds, do not undo the choice
    started = good + [_selection_record('scarce-100', 'mixup', 0, 85.)]
    assert choose_second_regime({'scarce-100': started}) == ('scarce-100', None)
    # 1.5 stds: not enough -> scarce-500's selection is missing, then judged
    weak = records('scarce-100', (80., 81., 79.), (81.5, 81.5, 81.5))
    assert choose_second_regime({'scarce-100': weak}) == (None, 'scarce-500')
    assert choose_second_regime({'scarce-100': weak[:5]}) == (None, 'scarce-100')  # 2 seeds
    strong = records('scarce-500', (90., 90.5, 89.5), (92., 92., 92.))
    assert choose_second_regime({'scarce-100': weak, 'scarce-500': strong}) == \
        ('scarce-500', None)
    # neither meets it: the protocol's fallback, scarce-100
    assert choose_second_regime({'scarce-100': weak, 'scarce-500': weak}) == ('scarce-100', None)
    # further seeds do not move the choice: it reads seeds 0-2
    late = [_selection_record('scarce-100', 'baseline', 3, 10.)]
    assert choose_second_regime({'scarce-100': good + late}) == ('scarce-100', None)


def test_the_results_section_is_the_committed_records_report(tmp_path):
    """``rank_mixers.py --report`` regenerates the committed ``ranking.md`` bit for bit from the
    committed records, and the ranking page carries it verbatim between its markers."""
    import shutil
    results = tmp_path / 'fashion_mnist'
    shutil.copytree(REPO_ROOT / 'results/fashion_mnist', results)
    tool = load_tool('tools/analysis_tools/rank_mixers.py')
    assert tool.main(['--report', str(results), '--figure', str(tmp_path / 'f.png')]) == 0
    text = (results / 'ranking.md').read_text()
    assert text == (REPO_ROOT / 'results/fashion_mnist/ranking.md').read_text()
    page = (REPO_ROOT / 'docs/en/results/ranking.md').read_text()
    begin = '<!-- the report of rank_mixers.py --report: begin -->\n'
    end = '<!-- the report of rank_mixers.py --report: end -->'
    assert page[page.index(begin) + len(begin):page.index(end)] == text
    assert (tmp_path / 'f.png').stat().st_size > 0


def test_the_report_applies_holm_and_marks_an_incomplete_arm_interim():
    """Made-up records of arm 1: RM 1 point better than every other method on each of 3
    seeds but CutMix, which equals RM: H1 not resolved, the others hold; interim (3 of 19)."""
    from mmrm.experiments.ranking_report import arm_summary
    records = []
    for seed in range(3):
        for method in ARMS['scarce-20']['methods']:
            err = 20. + 0.1 * seed + (0. if method in ('rm', 'cutmix') else 1. + 0.05 * seed)
            records.append(dict(wall_s=60., result=dict(
                method=method, seed=seed, test_last=100. - err, test_best=100. - err)))
    s = arm_summary('scarce-20', records)
    assert not s['complete'] and s['runs'] == 21 and s['seconds'] == 21 * 60.
    assert s['methods']['rm']['n'] == 3
    h1, h5 = s['tests']['H1'], s['tests']['H5']
    assert h1['mean'] == 0 and not h1['held']
    assert h5['mean'] == pytest.approx(1.05) and h5['held']
    # the five equal contrasts share their p; Holm multiplies the smallest by 6, then 5, ...
    assert h5['p_holm'] == pytest.approx(min(1., 6 * h5['p']))
