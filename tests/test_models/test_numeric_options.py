"""Every numeric option of RM and of its comparators is refused at build time when it is not a
finite number in range (NaN passes a check such as ``omega < 0``: ``omega=nan`` used to train
on a NaN loss), by the one helper :func:`mmrm.models.utils.options.check_number`, with a
message naming the component, the option and the allowed values. Valid boundary values build."""
import math

import numpy as np
import pytest
from mmpretrain.registry import BATCH_AUGMENTS, MODELS, TRANSFORMS

import mmrm  # noqa: F401
from mmrm.models.utils.options import check_number, check_numbers

NAN, INF = float('nan'), float('inf')
_PREPROCESSOR = dict(type='RMDataPreprocessor', mean=[0.], std=[1.])
_DENSENET = dict(type='DenseNetCIFAR', arch=dict(growth_rate=4, depths=[1, 1]), out_indices=1)


def _style(**kw):
    return dict(type='StyleCutMix', gamma=1.0, random_init=True, **kw)


#: (registry, config without the option, option, what the message says is allowed,
#:  bad values, a valid boundary value)
OPTIONS = [
    (BATCH_AUGMENTS, dict(type='RecursiveMixBatchAugment'), 'alpha',
     'a number in (0, 1] (the largest historical area share)', [NAN, INF, 0, 1.5], 1),
    (MODELS, dict(type='RoIConsistencyHead', num_classes=3, in_channels=4), 'omega',
     'a finite number >= 0', [NAN, INF, -INF, -0.1], 0),
    (MODELS, dict(type='RoIConsistencyHead', num_classes=3, in_channels=4), 'num_classes',
     'an int >= 1', [NAN, INF, 0, 2.5, True], 1),
    (MODELS, dict(type='RoIConsistencyHead', num_classes=3, in_channels=4), 'in_channels',
     'an int >= 1', [NAN, 0], 1),
    (MODELS, _PREPROCESSOR, 'num_classes', 'an int >= 1', [NAN, INF, 0, 3.5], 1),
    (BATCH_AUGMENTS, dict(type='ManifoldMixup'), 'alpha', 'a finite number > 0',
     [NAN, INF, 0], 1e-3),
    (BATCH_AUGMENTS, dict(type='ManifoldMixup'), 'prob', 'a number in [0, 1]', [NAN, INF, 1.5],
     0),
    (BATCH_AUGMENTS, dict(type='FeatureCutMix'), 'alpha', 'a finite number > 0', [NAN, INF, -1],
     1e-3),
    (BATCH_AUGMENTS, dict(type='FeatureCutMix'), 'prob', 'a number in [0, 1]', [NAN, -0.1], 1),
    (BATCH_AUGMENTS, dict(type='MoEx'), 'lam', 'a number in [0, 1]', [NAN, INF, 1.1], 0),
    (BATCH_AUGMENTS, dict(type='MoEx'), 'prob', 'a number in [0, 1]', [NAN], 1),
    (BATCH_AUGMENTS, dict(type='MoEx'), 'eps', 'a finite number > 0', [NAN, INF, 0], 1e-12),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'alpha', 'a finite number > 0', [NAN, INF, 0], 0.1),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'prob', 'a number in [0, 1]', [NAN, 2], 0),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'beta', 'a finite number >= 0', [NAN, INF, -1], 0),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'gamma', 'a finite number >= 0', [NAN, INF], 0),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'eta', 'a finite number >= 0', [NAN, INF], 0),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 't_eps', 'a finite number >= 0', [NAN, INF], 0),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'neigh_size', 'an int >= 1', [NAN, 0, 1.5], 1),
    (BATCH_AUGMENTS, dict(type='PuzzleMix'), 'block_nums', 'a list of ints >= 2',
     [(2, NAN), (1, 2), (), 4], (2, )),
    (BATCH_AUGMENTS, _style(), 'prob', 'a number in [0, 1]', [NAN, -0.5], 1),
    (BATCH_AUGMENTS, _style(), 'r', 'a number in [0, 1]', [NAN, 1.2], 0),
    (BATCH_AUGMENTS, _style(), 'alpha', 'a finite number > 0', [NAN, INF, 0], None),
    (BATCH_AUGMENTS, _style(), 'delta', 'a finite number > 0', [NAN, INF, 0], None),
    (BATCH_AUGMENTS, dict(type='StyleCutMix', random_init=True), "gamma (or 'auto')",
     'a finite number > 0', [NAN, INF, 0], None),
    (MODELS, dict(type='DropBlock', block_size=3), 'drop_prob',
     'a number in [0, 1) (1 - keep_prob)', [NAN, INF, 1.0, -0.1], 0),
    (MODELS, dict(type='DropBlock', drop_prob=0.1), 'block_size', 'an int >= 1',
     [NAN, 0, 2.0], 1),
    (MODELS, dict(type='DropBlockBackbone', backbone_type='ResNet_CIFAR', depth=18,
                  dropblock=dict(type='DropBlock', drop_prob=0.1, block_size=3),
                  stages=('layer3', 'layer4')), 'stage_scales',
     "a list of 2 numbers in (0, 1] (one drop-rate factor per stage of ['layer3', 'layer4'])",
     [(NAN, 1.), (0.25, INF), (0., 1.), (1., )], (1e-3, 1.)),
    (TRANSFORMS, dict(type='ClippedCutout', shape=4), 'prob', 'a number in [0, 1]',
     [NAN, INF, 2], 0),
    (TRANSFORMS, dict(type='ClippedCutout', shape=4), 'pad_val', 'a finite number',
     [NAN, INF], -1.5),
    (TRANSFORMS, dict(type='ClippedCutout'), 'shape',
     'a list of 2 ints >= 1 ((h, w), or one int for a square)', [(4, NAN), (0, 2), (4, )],
     (1, 1)),
    (MODELS, dict(type='PyramidNet', depth=20), 'alpha', 'a finite number >= 0',
     [NAN, INF, -1], 0),
    (MODELS, dict(type='PyramidNet', depth=20, alpha=4), 'drop_path_rate',
     'a number in [0, 1)', [NAN, INF, 1.0], 0),
    (MODELS, dict(type='PyramidNet', alpha=4), 'depth',
     'an int >= 8 (6n + 2 with bottleneck=False)', [NAN, INF, 2, 20.0], 8),
    (MODELS, dict(type='PyramidNet', depth=20, alpha=4), 'base_channels', 'an int >= 1',
     [NAN, 0], 1),
    (MODELS, _DENSENET, 'drop_rate', 'a number in [0, 1)', [NAN, INF, 1.0], 0),
    (MODELS, _DENSENET, 'compression_factor', 'a number in (0, 1]', [NAN, INF, 0], 1),
    (MODELS, _DENSENET, 'bn_size', 'an int >= 1', [NAN, 0], 1),
    (MODELS, _DENSENET, 'in_channels', 'an int >= 1', [NAN, 0], 1),
]

CASES = [pytest.param(registry, cfg, option, allowed, bad,
                      id=f"{cfg['type']}.{option.split()[0]}={bad!r}")
         for registry, cfg, option, allowed, bads, _ in OPTIONS for bad in bads]


@pytest.mark.parametrize('registry,cfg,option,allowed,bad', CASES)
def test_a_bad_numeric_option_is_refused_at_build_naming_component_option_and_range(
        registry, cfg, option, allowed, bad):
    key = option.split()[0]
    with pytest.raises(ValueError) as err:
        registry.build({**cfg, key: bad})
    assert str(err.value) == f"{cfg['type']}: {option} must be {allowed}, got {bad!r}"


@pytest.mark.parametrize('registry,cfg,option,good', [
    pytest.param(registry, cfg, option, good, id=f"{cfg['type']}.{option.split()[0]}={good!r}")
    for registry, cfg, option, _, _, good in OPTIONS if good is not None])
def test_the_boundary_value_of_each_option_builds(registry, cfg, option, good):
    registry.build({**cfg, option.split()[0]: good})


def test_the_helper_returns_the_value_and_reads_numpy_numbers():
    assert check_number('X', 'a', np.float32(0.5), 0, 1) == 0.5
    assert check_number('X', 'k', np.int64(3), 1, integer=True) == 3
    assert check_numbers('X', 'ks', [np.int64(2), 4], 2, integer=True) == (2, 4)
    with pytest.raises(ValueError, match=r'^X: a must be a finite number <= 0, got nan$'):
        check_number('X', 'a', math.nan, high=0)
    with pytest.raises(ValueError, match=r"^X: a must be a finite number, got '1'$"):
        check_number('X', 'a', '1')
