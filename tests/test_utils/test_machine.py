"""What a run asks of the machine: cores from the affinity mask, loader workers from the cores."""
import os
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmrm.utils import cores_available, fit_loaders_to_cores, loader_workers
from tests.utils import REPO_ROOT


@pytest.mark.parametrize('cores,workers', [(1, 0), (2, 0), (3, 0), (4, 1), (16, 4), (64, 8)])
def test_loader_workers_leave_small_machines_to_torch(cores, workers):
    assert loader_workers(cores) == workers


def test_fit_loaders_sets_every_loader():
    cfg = Config(dict(train_dataloader=dict(num_workers=2, persistent_workers=True),
                      val_dataloader=dict(num_workers=2, persistent_workers=True),
                      test_dataloader=None))
    fit_loaders_to_cores(cfg, 2)
    assert cfg.train_dataloader.num_workers == 0 and not cfg.train_dataloader.persistent_workers
    assert cfg.val_dataloader.num_workers == 0 and not cfg.val_dataloader.persistent_workers
    fit_loaders_to_cores(cfg, 16)
    assert cfg.train_dataloader.num_workers == 4 and cfg.train_dataloader.persistent_workers
    assert cfg.test_dataloader is None


@pytest.mark.skipif(not hasattr(os, 'sched_setaffinity'), reason='Linux affinity masks')
def test_cores_available_follows_the_affinity_mask():
    assert 1 <= cores_available() <= (os.cpu_count() or 1)
    one = sorted(os.sched_getaffinity(0))[0]
    code = (f'import os; os.sched_setaffinity(0, {{{one}}}); '
            'from mmrm.utils.machine import cores_available; print(cores_available())')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == '1'
