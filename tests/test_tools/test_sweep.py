"""tools/sweep.py on the run cache: a finished run is skipped only when its key (config, value,
train.py arguments, seed) is the same; trainings are faked in-process (``--launcher inline``)."""
import json
from pathlib import Path

import pytest

from mmrm.experiments import RunContext
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


def test_a_checkpoint_or_a_data_file_the_run_reads_is_in_its_key(tmp_path, fake_training):
    """A checkpoint named in extra ``--cfg-options`` (``load_from``, relative to the working
    directory) and the files of the datasets' ``data_root`` are hashed: another file, or the
    same file changed, is another run; the same options in another order are the same run."""
    import os
    sweep = load_tool('tools/sweep.py')
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'train-images-idx3-ubyte').write_bytes(b'one')
    cfg = tmp_path / 'toy.py'
    cfg.write_text(f"model = dict(type='Toy', alpha=0.1)\n"
                   f"train_dataloader = dict(dataset=dict(data_root='{data}'))\n")
    (tmp_path / 'a.pth').write_bytes(b'a')
    (tmp_path / 'b.pth').write_bytes(b'b')
    base = [str(cfg), '--key', 'model.alpha', '--values', '0.3', '--work-root',
            str(tmp_path / 'work'), '--launcher', 'inline']
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert sweep.main(base + ['--cfg-options', 'load_from=a.pth', 'model.depth=2']) == 0
        assert len(fake_training) == 1
        # the same options in another order: the same run
        assert sweep.main(base + ['--cfg-options', 'model.depth=2', 'load_from=a.pth']) == 0
        assert len(fake_training) == 1
        assert sweep.main(base + ['--cfg-options', 'load_from=b.pth', 'model.depth=2']) == 0
        assert len(fake_training) == 2  # another checkpoint: trained again
        (tmp_path / 'b.pth').write_bytes(b'b, retrained')
        assert sweep.main(base + ['--cfg-options', 'load_from=b.pth', 'model.depth=2']) == 0
        assert len(fake_training) == 3  # the same name, other weights
        (data / 'train-images-idx3-ubyte').write_bytes(b'two')
        assert sweep.main(base + ['--cfg-options', 'load_from=b.pth', 'model.depth=2']) == 0
        assert len(fake_training) == 4  # a changed data file
    finally:
        os.chdir(cwd)
    assert len(set(fake_training)) == 4
    record = json.loads((Path(fake_training[-1]) / 'result.json').read_text())
    assert set(record['key']['checkpoints']) == {'load_from'}
    assert set(record['key']['data']) == {'train_dataloader.dataset'}
