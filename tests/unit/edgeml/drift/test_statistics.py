"""Drift statistics against scipy on the same binned data, and their properties.

scipy is the reference here only: the module itself is standard library (checked below).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import spatial, special, stats

from edgeml.drift import statistics as module
from edgeml.drift.statistics import (
    EPSILON,
    ChiSquare,
    Method,
    aligned,
    benjamini_hochberg,
    chi_square,
    jensen_shannon,
    kolmogorov_smirnov,
    proportions,
    psi,
    score,
)

# No deadline: scipy's first calls and busy shared machines are slow.
PROPERTY = settings(max_examples=150, deadline=None)
METHODS: tuple[Method, ...] = ("psi", "ks", "jsd")
# How far from the exact value rounding may put each score near 0: the Jensen-Shannon
# distance is a square root, so a divergence of 1e-16 is a distance of 1e-8.
NEAR_ZERO = {"psi": 1e-12, "ks": 1e-12, "jsd": 1e-7}

count = st.one_of(
    st.integers(0, 10_000).map(float),
    st.floats(1e-3, 1e7, allow_nan=False),
    st.just(0.0),
)


def histogram(bins: int) -> st.SearchStrategy[list[float]]:
    return st.lists(count, min_size=bins, max_size=bins).filter(lambda c: sum(c) > 0)


@st.composite
def pairs(draw: st.DrawFn, max_bins: int = 20) -> tuple[list[float], list[float]]:
    """Two histograms over the same bins, each with some counts."""
    bins = draw(st.integers(1, max_bins))
    return draw(histogram(bins)), draw(histogram(bins))


@st.composite
def small_integer_pairs(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    bins = draw(st.integers(1, 12))
    ints = st.lists(st.integers(0, 30), min_size=bins, max_size=bins).filter(any)
    return draw(ints), draw(ints)


# --- proportions ---------------------------------------------------------------------


@PROPERTY
@given(st.integers(1, 30).flatmap(histogram))
def test_proportions_sum_to_one_and_never_reach_zero(counts: list[float]) -> None:
    p = proportions(counts)
    assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
    assert min(p) >= EPSILON / (1 + len(counts) * EPSILON) * (1 - 1e-12)


def test_proportions_follow_the_documented_formula() -> None:
    k, eps = 3, EPSILON
    assert proportions([3, 0, 1]) == pytest.approx(
        [(0.75 + eps) / (1 + k * eps), eps / (1 + k * eps), (0.25 + eps) / (1 + k * eps)],
        rel=1e-15,
    )


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ([], "at least one bin"),
        ([0, 0, 0], "all zero"),
        ([3, -1], "non-negative"),
        ([1.0, math.inf], "finite"),
        ([1.0, math.nan], "finite"),
    ],
)
def test_proportions_reject_counts_that_are_no_distribution(
    counts: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        proportions(counts)


def test_an_empty_bin_gives_a_finite_score() -> None:
    for method in METHODS:
        assert math.isfinite(score(method, [100, 0, 0], [0, 0, 100]))


# --- the three distances -------------------------------------------------------------


@PROPERTY
@given(st.integers(1, 20).flatmap(histogram), st.floats(0.01, 1000))
def test_identical_distributions_score_zero(counts: list[float], factor: float) -> None:
    for method in METHODS:
        assert score(method, counts, counts) == 0.0
        # The same shape at another size is the same distribution.
        assert score(method, counts, [c * factor for c in counts]) == pytest.approx(
            0, abs=NEAR_ZERO[method]
        )


@PROPERTY
@given(pairs())
def test_scores_are_symmetric(pair: tuple[list[float], list[float]]) -> None:
    baseline, live = pair
    for method in METHODS:
        assert score(method, baseline, live) == score(method, live, baseline)


@PROPERTY
@given(pairs())
def test_scores_are_in_range(pair: tuple[list[float], list[float]]) -> None:
    baseline, live = pair
    assert psi(baseline, live) >= 0.0
    assert 0.0 <= jensen_shannon(baseline, live) <= 1.0
    assert 0.0 <= kolmogorov_smirnov(baseline, live) <= 1.0


@PROPERTY
@given(pairs())
def test_psi_is_both_kullback_leibler_divergences_of_scipy(
    pair: tuple[list[float], list[float]],
) -> None:
    baseline, live = pair
    p, q = proportions(baseline), proportions(live)
    expected = stats.entropy(p, q) + stats.entropy(q, p)
    assert psi(baseline, live) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@PROPERTY
@given(pairs())
def test_jensen_shannon_is_scipys_distance_in_base_2(
    pair: tuple[list[float], list[float]],
) -> None:
    baseline, live = pair
    p, q = proportions(baseline), proportions(live)
    expected = spatial.distance.jensenshannon(p, q, base=2)
    # For nearly equal p and q, rounding makes scipy's divergence a hair below zero and
    # its square root NaN; the distance there is 0.
    expected = 0.0 if math.isnan(expected) else expected
    assert jensen_shannon(baseline, live) == pytest.approx(expected, rel=1e-9, abs=NEAR_ZERO["jsd"])


# Only the statistic is compared; scipy's asymptotic p-value divides by zero on tiny samples.
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@PROPERTY
@given(small_integer_pairs())
def test_kolmogorov_smirnov_is_the_ks_2samp_statistic_of_the_rows(
    pair: tuple[list[int], list[int]],
) -> None:
    baseline, live = pair
    # Every row at its bin's index: the empirical CDFs are the binned ones.
    rows_b = np.repeat(np.arange(len(baseline)), baseline)
    rows_l = np.repeat(np.arange(len(live)), live)
    expected = stats.ks_2samp(rows_b, rows_l, method="asymp").statistic
    assert kolmogorov_smirnov(baseline, live) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@PROPERTY
@given(pairs(), st.floats(0.01, 100))
def test_adding_a_scaled_copy_of_the_live_counts_changes_no_score(
    pair: tuple[list[float], list[float]], factor: float
) -> None:
    baseline, live = pair
    bigger = [v + factor * v for v in live]
    for method in METHODS:
        assert score(method, baseline, bigger) == pytest.approx(
            score(method, baseline, live), rel=1e-9, abs=NEAR_ZERO[method]
        )


@st.composite
def shifted(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """A histogram, and the same with some of one bin's rows moved to another bin."""
    bins = draw(st.integers(2, 15))
    baseline = draw(st.lists(st.integers(1, 1000), min_size=bins, max_size=bins))
    source, target = draw(st.permutations(range(bins)))[:2]
    moved = draw(st.integers(1, baseline[source]))
    live = list(baseline)
    live[source] -= moved
    live[target] += moved
    return baseline, live


@PROPERTY
@given(shifted())
def test_a_shifted_distribution_scores_higher_than_an_identical_one(
    pair: tuple[list[int], list[int]],
) -> None:
    baseline, live = pair
    for method in METHODS:
        assert score(method, baseline, live) > score(method, baseline, list(baseline))


def test_scores_grow_with_the_shift() -> None:
    bell = [1, 5, 20, 50, 80, 50, 20, 5, 1, 0, 0, 0, 0]
    moved = [[0] * s + bell[: len(bell) - s] for s in range(5)]
    for method in METHODS:
        by_shift = [score(method, bell, live) for live in moved]
        assert by_shift == sorted(by_shift), (method, by_shift)
        assert by_shift[0] == 0.0


def test_a_known_psi() -> None:
    # Proportions 0.5/0.5 against 0.9/0.1, each smoothed.
    p = [(0.5 + EPSILON) / (1 + 2 * EPSILON)] * 2
    q = [(0.9 + EPSILON) / (1 + 2 * EPSILON), (0.1 + EPSILON) / (1 + 2 * EPSILON)]
    expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert psi([50, 50], [90, 10]) == pytest.approx(expected, rel=1e-14)
    assert expected == pytest.approx(0.4 * math.log(9), rel=1e-3)


def test_disjoint_histograms_are_at_the_far_end() -> None:
    assert kolmogorov_smirnov([10, 0], [0, 10]) == 1.0
    assert jensen_shannon([10, 0], [0, 10], epsilon=1e-12) == pytest.approx(1.0, abs=1e-5)


def test_score_dispatches_by_method() -> None:
    baseline, live = [10, 20, 30], [30, 20, 10]
    assert score("psi", baseline, live) == psi(baseline, live)
    assert score("jsd", baseline, live) == jensen_shannon(baseline, live)
    assert score("ks", baseline, live) == kolmogorov_smirnov(baseline, live)
    with pytest.raises(ValueError, match="unknown drift method 'kl'"):
        score("kl", baseline, live)  # type: ignore[arg-type]


@pytest.mark.parametrize("function", [psi, jensen_shannon, kolmogorov_smirnov, chi_square])
def test_histograms_over_different_bins_are_refused(function: object) -> None:
    with pytest.raises(ValueError, match="different bins"):
        function([1, 2, 3], [1, 2])  # type: ignore[operator]


# --- chi-square ----------------------------------------------------------------------


def _scipy_chi_square(baseline: Sequence[float], live: Sequence[float]) -> ChiSquare:
    kept = [j for j in range(len(baseline)) if baseline[j] + live[j] > 0]
    table = np.array([[baseline[j] for j in kept], [live[j] for j in kept]], dtype=float)
    result = stats.chi2_contingency(table, correction=False)
    return ChiSquare(float(result.statistic), int(result.dof), float(result.pvalue))


@PROPERTY
@given(pairs(max_bins=30))
def test_chi_square_is_scipys_chi2_contingency(pair: tuple[list[float], list[float]]) -> None:
    baseline, live = pair
    ours, theirs = chi_square(baseline, live), _scipy_chi_square(baseline, live)
    assert ours.dof == theirs.dof
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=1e-9)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=1e-9, abs=1e-300)


@PROPERTY
@given(small_integer_pairs())
def test_chi_square_is_scipys_on_small_integer_tables(pair: tuple[list[int], list[int]]) -> None:
    baseline, live = pair
    ours, theirs = chi_square(baseline, live), _scipy_chi_square(baseline, live)
    assert ours.dof == theirs.dof
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=1e-9)


@pytest.mark.parametrize(
    "live",
    [
        [4900, 3050, 2050],  # p ~ 0.07
        [4000, 3000, 3000],  # p ~ 1e-68
        [3000, 3000, 4000],  # p ~ 1e-254
    ],
)
def test_chi_square_keeps_tiny_p_values_exact(live: list[float]) -> None:
    baseline = [5000, 3000, 2000]
    assert chi_square(baseline, live).p_value == pytest.approx(
        _scipy_chi_square(baseline, live).p_value, rel=1e-9
    )


def test_chi_square_p_value_underflows_to_zero_as_scipys_does() -> None:
    baseline, live = [5000, 3000, 2000, 0], [1000, 1000, 3000, 5000]
    assert chi_square(baseline, live).p_value == _scipy_chi_square(baseline, live).p_value == 0.0


def test_chi_square_drops_bins_empty_in_both_rows() -> None:
    assert chi_square([10, 0, 5, 0], [3, 0, 8, 0]) == chi_square([10, 5], [3, 8])
    assert chi_square([10, 0, 5], [3, 0, 8]).dof == 1


def test_chi_square_of_one_occupied_bin_is_no_evidence() -> None:
    assert chi_square([10, 0], [3, 0]) == ChiSquare(statistic=0.0, dof=0, p_value=1.0)
    assert chi_square([7], [700]) == ChiSquare(statistic=0.0, dof=0, p_value=1.0)


def test_chi_square_needs_counts_on_both_sides() -> None:
    with pytest.raises(ValueError, match="all zero"):
        chi_square([10, 5], [0, 0])


@PROPERTY
@given(pairs(), st.floats(0.01, 100))
def test_chi_square_weighs_evidence_by_size(
    pair: tuple[list[float], list[float]], factor: float
) -> None:
    # Unlike the distances: the same shapes with more rows are a stronger signal.
    baseline, live = pair
    base = chi_square(baseline, live)
    scaled = chi_square([b * factor for b in baseline], [v * factor for v in live])
    assert scaled.statistic == pytest.approx(base.statistic * factor, rel=1e-9, abs=1e-9)


# --- the incomplete gamma ------------------------------------------------------------

gamma_q = module._gamma_q


@pytest.mark.parametrize(
    ("a", "x"),
    [
        (0.5, 0.0),
        (0.5, 1e-10),
        (0.5, 1.4),
        (0.5, 1.6),
        (0.5, 700.0),  # ~1e-306
        (1.0, 1.0),
        (4.5, 5.5),
        (4.5, 100.0),
        (10.0, 10.0),
        (10.0, 11.0),
        (49.5, 49.5),
        (49.5, 400.0),  # ~1e-124
        (500.0, 501.0),
        (500.0, 900.0),
        (1e4, 9.9e3),
        (1e4, 1.05e4),
        (5e5, 5e5),
        (1e6, 1e6 + 3e3),
        (2.0, 1e-300),
        (0.05, 3.0),
    ],
)
def test_gamma_q_is_scipys_gammaincc(a: float, x: float) -> None:
    expected = special.gammaincc(a, x)
    assert expected > 1e-307
    assert gamma_q(a, x) == pytest.approx(expected, rel=1e-10)


@settings(max_examples=500, deadline=None)
@given(
    st.floats(math.log(0.05), math.log(1e6)).map(math.exp),
    st.floats(-6.0, 6.0),
)
def test_gamma_q_is_scipys_gammaincc_across_the_range(a: float, spread: float) -> None:
    # x within a few standard deviations of a (where Q moves from 1 to 0), and beyond.
    x = max(0.0, a + spread * math.sqrt(a) * 3)
    expected = special.gammaincc(a, x)
    assume(expected > 1e-300)
    assert gamma_q(a, x) == pytest.approx(expected, rel=1e-10)


def test_gamma_q_ends() -> None:
    assert gamma_q(3.0, 0.0) == 1.0
    assert gamma_q(3.0, math.inf) == 0.0
    assert gamma_q(0.5, 2000.0) == 0.0  # below the smallest double, as scipy says
    for a, x in [(0.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (math.nan, 1.0), (1.0, math.nan)]:
        with pytest.raises(ValueError, match="a > 0 and x >= 0"):
            gamma_q(a, x)


# --- Benjamini-Hochberg --------------------------------------------------------------


@PROPERTY
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200))
def test_benjamini_hochberg_is_scipys_false_discovery_control(p_values: list[float]) -> None:
    expected = stats.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected), rel=1e-12, abs=1e-300)


@PROPERTY
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_benjamini_hochberg_keeps_the_order_and_never_lowers_a_p_value(
    p_values: list[float],
) -> None:
    q = benjamini_hochberg(p_values)
    assert all(p <= qi * (1 + 1e-15) and qi <= 1.0 for p, qi in zip(p_values, q, strict=True))
    ranked = sorted(range(len(q)), key=p_values.__getitem__)
    assert [q[i] for i in ranked] == sorted(q)


def test_benjamini_hochberg_by_hand() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx(
        [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2]
    )
    assert benjamini_hochberg([]) == []
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        benjamini_hochberg([0.5, 1.5])


# --- categorical alignment -----------------------------------------------------------


def test_aligned_puts_baseline_classes_first_then_new_ones_sorted() -> None:
    baseline = {"cat": 30.0, "bird": 5.0, "dog": 65.0}
    live = {"dog": 10.0, "zebra": 1.0, "ant": 2.0, "cat": 7.0}
    assert aligned(baseline, live) == ([30.0, 5.0, 65.0, 0.0, 0.0], [7.0, 0.0, 10.0, 2.0, 1.0])


def test_aligned_prediction_drift_counts_a_new_class() -> None:
    baseline, live = aligned({"0": 50.0, "1": 50.0}, {"0": 50.0, "1": 40.0, "2": 10.0})
    assert psi(baseline, live) > 0.1
    assert aligned({}, {"b": 1.0, "a": 2.0}) == ([0.0, 0.0], [2.0, 1.0])


# --- purity --------------------------------------------------------------------------

STANDARD = {"__future__", "math", "dataclasses", "collections.abc", "typing"}


def test_statistics_uses_only_the_standard_library() -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= STANDARD, imported - STANDARD
