"""Counting host-device synchronisations (:mod:`mmrm.analysis.cuda_sync`) with fake warnings,
so the counting logic is tested on a machine without CUDA."""
import os

import pytest

from mmrm.analysis import cuda_sync


def _fake_sync(filename, lineno):
    import warnings
    warnings.warn_explicit('called a synchronizing CUDA operation', UserWarning, filename,
                           lineno)


def test_record_syncs_counts_by_site_and_passes_other_warnings_on(monkeypatch):
    mmrm_file = os.path.join(cuda_sync._MMRM_ROOT, 'models', 'heads', 'x.py')
    lib_file = '/venv/lib/python3.11/site-packages/mmpretrain/models/utils/y.py'

    def fn():
        _fake_sync(mmrm_file, 7)
        _fake_sync(lib_file, 3)
        _fake_sync(lib_file, 3)
        import warnings
        warnings.warn('unrelated warning')

    with pytest.warns(UserWarning, match='unrelated warning'):
        sites = cuda_sync.record_syncs(fn, repeats=2)
    assert dict(sites) == {'mmrm/models/heads/x.py:7': 2, 'mmpretrain/models/utils/y.py:3': 4}
    # a package imported from a PYTHONPATH folder is named from its import root too
    monkeypatch.syspath_prepend('/opt/extra_site')
    assert cuda_sync.short_site('/opt/extra_site/mmcv/ops/z.py', 5) == 'mmcv/ops/z.py:5'
    assert cuda_sync.is_mmrm_site('mmrm/models/heads/x.py:7')
    assert not cuda_sync.is_mmrm_site('mmpretrain/models/utils/y.py:3')


def test_train_step_syncs_counts_only_the_counted_steps():
    calls = []

    class Fake:
        def __init__(self, site):
            self.site = site

        def train_step(self, data, optim):
            calls.append(data)
            _fake_sync(*self.site)

    models = dict(baseline=Fake(('/x/site-packages/mmpretrain/p.py', 1)),
                  rm=Fake((os.path.join(cuda_sync._MMRM_ROOT, 'models', 'r.py'), 2)))
    batches = iter(range(100))
    out = cuda_sync.train_step_syncs(models, dict(baseline=None, rm=None),
                                     lambda: next(batches), steps=3, warmup=2)
    assert len(calls) == 10 and calls[:5] == [0, 1, 2, 3, 4]  # warm-ups, then the 3 counted
    assert out['baseline'] == dict(per_step=1.0, in_mmrm=0, sites={'mmpretrain/p.py:1': 3})
    assert out['rm'] == dict(per_step=1.0, in_mmrm=3, sites={'mmrm/models/r.py:2': 3})
