"""The ranking study's sizing (mmrm.experiments.ranking): the preregistered number of seeds is
the power estimate on the committed pilot records, and the page says it verbatim."""
from mmrm.analysis.compare import load_records
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
