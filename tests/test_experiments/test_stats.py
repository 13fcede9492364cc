"""The experiment statistics (mmrm.experiments.stats) against hand computations: Holm's
adjusted p-values and steps, the level of each contrast's interval, the noncentral-t sample
size and the sd's upper confidence limit."""
import math

import pytest

from mmrm.experiments.stats import (holm, holm_intervals, paired_t, pooled_sd, seeds_for_power,
                                    sd_upper_limit)


def test_holm_adjusts_step_down_and_keeps_the_input_order():
    # sorted 0.01, 0.02, 0.04 of m = 3: 3 x 0.01, max(0.03, 2 x 0.02), max(0.04, 1 x 0.04)
    adjusted, steps = holm([0.04, 0.01, 0.02])
    assert adjusted == pytest.approx([0.04, 0.03, 0.04])
    assert steps == [3, 1, 2]
    # monotone: a later step never gets a smaller adjusted p; capped at 1
    adjusted, _ = holm([0.3, 0.001, 0.9, 0.2])
    assert adjusted == pytest.approx([0.6, 0.004, 0.9, 0.6])


def test_each_contrast_interval_is_at_the_level_holm_tests_it():
    a = dict(big=([1., 2., 3., 4.], [0., 0.5, 1., 1.2]),   # clear
             none=([1., 2., 3., 4.], [1.5, 1.5, 3.5, 3.4]))  # no effect
    out = holm_intervals(a)
    big, none = out['big'], out['none']
    assert big['step'] == 1 and none['step'] == 2
    assert big['confidence'] == pytest.approx(1 - 0.05 / 2)
    assert none['confidence'] == pytest.approx(0.95)
    mean, lo, hi, p = paired_t(*a['big'], confidence=0.975)
    assert (big['mean'], big['low'], big['high'], big['p']) == pytest.approx((mean, lo, hi, p))
    assert big['p_holm'] == pytest.approx(min(1, 2 * p))
    assert big['held'] is (big['p_holm'] < 0.05) and big['low'] > 0
    assert none['held'] is False and none['low'] < 0 < none['high']
    with pytest.raises(ValueError, match='fewer than 2 pairs'):
        holm_intervals(dict(x=([1.], [2.])))


def test_seeds_for_power_against_the_normal_approximation_and_its_t_correction():
    # normal approximation n = ((z_.975 + z_.8) sd / delta)^2 = 7.85 (sd = delta); the t test
    # needs a little more: 10 pairs (G*Power, paired t, d = 1: n = 10)
    assert seeds_for_power(1., 1.) == 10
    # d = 0.5: G*Power gives 34
    assert seeds_for_power(1., 0.5) == 34
    assert seeds_for_power(0.5, 1.) < seeds_for_power(1., 1.)
    with pytest.raises(ValueError, match='sd > 0'):
        seeds_for_power(0., 0.5)


def test_sd_upper_limit_and_pooling_by_hand():
    # chi2_0.2(12) = 7.8073: sqrt(12 / 7.8073) = 1.23977
    assert sd_upper_limit(1., 12, 0.8) == pytest.approx(math.sqrt(12 / 7.807327), rel=1e-5)
    # two samples around their own means: squares 2 + 8 over 1 + 2 df
    sd, df = pooled_sd([[1., 3.], [0., 2., 4.]])
    assert df == 3 and sd == pytest.approx(math.sqrt(10 / 3))
