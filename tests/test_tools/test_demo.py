"""`make demo`'s pieces: the Fashion-MNIST preparation and tools/demo.py end to end (tiny data),
the latter with the stack as `make demo`'s classification-only venv has it (no mmcv ops, no mmdet,
no mmseg)."""
import gzip
import subprocess
import sys

import pytest
from PIL import Image

from tests.utils import REPO_ROOT, classification_only_env, write_fashion_mnist

PREPARE = str(REPO_ROOT / 'tools/dataset_converters/prepare_fashion_mnist.py')


def test_prepare_refuses_wrong_files_and_unpacks_gz(tmp_path):
    src = tmp_path / 'src'
    write_fashion_mnist(src, n_train=3, n_test=2)
    for f in list(src.iterdir()):
        f.with_name(f.name + '.gz').write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, PREPARE, '--src', str(src), '--out', str(out),
                           '--no-apt'], capture_output=True, text=True)
    # 3 train images are not Fashion-MNIST's 60000: refused, naming the problem
    assert proc.returncode != 0 and 'unexpected IDX headers' in proc.stderr
    assert (out / 'train-images-idx3-ubyte').read_bytes()[:8] == \
        bytes([0, 0, 8, 3]) + (3).to_bytes(4, 'big')
    missing = subprocess.run([sys.executable, PREPARE, '--src', str(tmp_path / 'none'),
                              '--out', str(tmp_path / 'o2'), '--no-apt'],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and 'does not hold the four Fashion-MNIST' in missing.stderr


@pytest.mark.timeout(600)
def test_demo_runs_end_to_end_on_tiny_data(tmp_path):
    data = write_fashion_mnist(tmp_path / 'fmnist', n_train=64, n_test=20)
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/demo.py'), '--epochs', '1', '--data-root', data,
         '--work-dir', str(work), '--grid-iters', '3', '--cfg-options',
         'train_dataloader.batch_size=16', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=REPO_ROOT, env=classification_only_env(tmp_path / 'site'), capture_output=True,
        text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'mmcv-lite' not in out  # mmcv's warning for a missing op RM never uses is filtered
    assert 'RecursiveMix demo on Fashion-MNIST: top-1 accuracy' in out
    assert 'Epoch(train) [1][4/4]' in out and 'loss_rm' in out  # RM trained, 64/16 steps
    assert (work / 'epoch_1.pth').is_file()
    grid = Image.open(work / 'recursive_mix_samples.png')
    assert grid.size == (4 * 160, 6 * 220)  # 3 RM steps + the cut column, 6 rows
