"""Bootstrap intervals: reproducible, sensible width, and paired comparisons that can tell."""

import numpy as np
import pytest

from calibration.metrics import (MetricError, auroc, average_precision, benchmark_metrics,
                                 bootstrap_benchmark_ci, bootstrap_ci,
                                 paired_benchmark_differences, paired_difference_ci)


def make_run(seed, size=600, separation=1.0):
    rng = np.random.default_rng(seed)
    defect = rng.random(size) < 0.3
    major = defect & (rng.random(size) < 0.4)
    scores = rng.normal(size=size) + separation * defect
    return defect, major, scores


def test_same_seed_same_interval_other_seed_other_interval():
    defect, _, scores = make_run(0)
    first = bootstrap_ci(average_precision, defect, scores, n=200, seed=5)
    again = bootstrap_ci(average_precision, defect, scores, n=200, seed=5)
    other = bootstrap_ci(average_precision, defect, scores, n=200, seed=6)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.low < first.estimate < first.high
    assert first.estimate == pytest.approx(average_precision(defect, scores))


def test_interval_covers_the_population_value_most_of_the_time():
    # The population AUROC of N(1,1) vs N(0,1) is Phi(1/sqrt(2)) = 0.7602.
    truth = 0.7602499
    covered = 0
    trials = 30
    for trial in range(trials):
        defect, _, scores = make_run(1000 + trial, size=300)
        interval = bootstrap_ci(auroc, defect, scores, n=200, seed=trial)
        covered += interval.low <= truth <= interval.high
    assert covered >= 0.8 * trials  # nominal 95 %; far below means the interval is wrong


def test_narrower_with_more_data():
    small = bootstrap_ci(auroc, *make_run(1, size=150)[::2], n=200)
    large = bootstrap_ci(auroc, *make_run(1, size=3000)[::2], n=200)
    assert (large.high - large.low) < (small.high - small.low)


def test_resamples_are_stratified_so_rare_positives_never_vanish():
    labels = np.zeros(200, bool)
    labels[:2] = True
    scores = np.linspace(0, 1, 200)
    interval = bootstrap_ci(average_precision, labels, scores, n=300, seed=0)
    assert interval.failed == 0


def test_paired_difference_finds_a_real_improvement_and_not_a_fake_one():
    defect, major, scores_a = make_run(2, size=800)
    rng = np.random.default_rng(9)
    better = scores_a + 1.0 * defect + 0.2 * rng.normal(size=defect.size)
    result = paired_difference_ci(average_precision, defect, scores_a, better, n=300, seed=1)
    assert result.difference > 0 and result.significant
    same = paired_difference_ci(average_precision, defect, scores_a, scores_a.copy(), n=100)
    assert same.difference == 0 and not same.significant


def test_paired_difference_passes_extra_columns_before_the_scores():
    defect, major, scores = make_run(3)

    def ap_major(defect, major, scores):
        keep = ~defect | major
        return average_precision(major[keep], scores[keep])

    result = paired_difference_ci(ap_major, defect, scores, scores + major, major, n=50)
    assert result.estimate_a == pytest.approx(ap_major(defect, major, scores))
    assert result.difference > 0


def test_benchmark_intervals_contain_the_table_numbers():
    defect, major, scores = make_run(4)
    table = benchmark_metrics(defect, major, scores)
    intervals = bootstrap_benchmark_ci(defect, major, scores, n=100, seed=2)
    for name, interval in intervals.items():
        assert interval.estimate == pytest.approx(getattr(table, name))
        assert interval.low <= interval.estimate <= interval.high
        assert interval.failed == 0
    differences = paired_benchmark_differences(defect, major, scores, scores + 2 * defect,
                                               n=100, seed=2)
    assert differences["ap_any"].significant and differences["ap_any"].difference > 0


def test_bad_settings_raise_metric_errors():
    defect, _, scores = make_run(5)
    with pytest.raises(MetricError, match="level"):
        bootstrap_ci(auroc, defect, scores, level=95)
    with pytest.raises(MetricError, match="at least 1"):
        bootstrap_ci(auroc, defect, scores, n=0)
    with pytest.raises(MetricError, match="differ in length"):
        paired_difference_ci(auroc, defect, scores, scores[:-1])
