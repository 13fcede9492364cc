"""tools/sweep.py on the run cache: a finished run is skipped only when its key (config, value,
train.py arguments, seed) is the same; trainings are faked in-process (``--launcher inline``)."""
import json
from pathlib import Path

import pytest

from mmrm.analysis.runs import RunContext
from tests.utils import load_tool

pytest.importorskip('submitit')


@pytest.fixture
def fake_training(monkeypatch):
    """Each 'training' logs one accuracy (60 + 10 * the alpha of its command) and is counted."""
    trained = []

    def call(self, cmd, cwd=None):
        trained.append(self.folder)
        alpha = float(next(c for c in cmd if c.startswith('model.alpha=')).split('=')[1])
        vis = Path(self.folder) / 'T' / 'vis_data'
        vis.mkdir(parents=True, exist_ok=True)
        (vis / 'scalars.json').write_text(json.dumps({'accuracy/top1': 60 + 10 * alpha}) + '\n')
    monkeypatch.setattr(RunContext, 'call', call)
    return trained


def test_sweep_skips_only_the_runs_of_the_same_key(tmp_path, fake_training, capsys):
    sweep = load_tool('tools/sweep.py')
    cfg = tmp_path / 'toy.py'
    cfg.write_text("model = dict(type='Toy', alpha=0.1)\n")
    base = [str(cfg), '--key', 'model.alpha', '--seeds', '0', '1', '--work-root',
            str(tmp_path / 'work'), '--launcher', 'inline']
    assert sweep.main(base + ['--values', '0.3']) == 0
    first = list(fake_training)
    assert len(first) == 2 and all('/toy/alpha-0.3_seed-' in f for f in first)
    # the same runs: nothing trains again
    assert sweep.main(base + ['--values', '0.3']) == 0
    assert fake_training == first and 'done before' in capsys.readouterr().out
    # a new value runs only its own seeds
    assert sweep.main(base + ['--values', '0.3', '0.5']) == 0
    assert len(fake_training) == 4 and all('alpha-0.5' in f for f in fake_training[2:])
    # another train.py argument, or an edited config: other keys, new folders, trained again
    assert sweep.main(base + ['--values', '0.3', '--amp']) == 0
    cfg.write_text("model = dict(type='Toy', alpha=0.1, depth=2)\n")
    assert sweep.main(base + ['--values', '0.3']) == 0
    assert len(fake_training) == 8 and len(set(fake_training)) == 8
    capsys.readouterr()
    assert sweep.main(base + ['--values', '0.3', '--summary']) == 0
    row = [x for x in capsys.readouterr().out.splitlines() if x.strip().startswith('0.3')][0]
    assert '|    2 |              37.00 | 0.00' in row  # 100 - (60 + 3), both seeds
