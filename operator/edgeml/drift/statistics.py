"""Drift statistics over binned counts: PSI, Jensen-Shannon, Kolmogorov-Smirnov, chi-square.

Pure functions of counts over the same bins (the baseline's from training, the live
ones from a window), standard library only: no numpy, no scipy. The operator scores
every feature of every deployment on each check; plain Python keeps its image small
and its memory flat (scipy and numpy would add tens of MB of resident memory for a
handful of formulas), and at ~10 bins a feature it is fast enough: scoring 100
features, with a chi-square test each, takes under a millisecond
(bench/drift_statistics.py).

The distances (psi, jensen_shannon, kolmogorov_smirnov) compare proportions, so they
see the shape of each histogram, not its size. The chi-square test compares raw
counts, so it does see size: that is how it weighs the evidence a window holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

EPSILON = 1e-4
"""The floor of a smoothed proportion: an empty bin counts as 0.01% of its histogram."""

Method = Literal["psi", "ks", "jsd"]

_LN2 = math.log(2.0)


def proportions(counts: Sequence[float], *, epsilon: float = EPSILON) -> list[float]:
    """The counts as proportions, each floored at `epsilon` and renormalised to sum to 1.

    p_i = (c_i / N + epsilon) / (1 + k * epsilon) for k bins and N counts in all. The
    smoothing keeps an empty bin from making a log ratio infinite, and, acting on
    proportions rather than counts, it leaves the result unchanged when every count is
    multiplied by the same constant. Raises ValueError for no bins, a negative or
    non-finite count, or counts that are all zero (guard on the sample count first).
    """
    total = _total(counts)
    inverse_norm = 1.0 / (1.0 + len(counts) * epsilon)
    return [(c / total + epsilon) * inverse_norm for c in counts]


def psi(baseline: Sequence[float], live: Sequence[float], *, epsilon: float = EPSILON) -> float:
    """Population stability index: sum of (q_i - p_i) * ln(q_i / p_i), p baseline, q live.

    Over the smoothed proportions (see `proportions`); 0 for identical histograms,
    and symmetric in its arguments.
    """
    p, q, norm = _smoothed(baseline, live, epsilon)
    log = math.log
    # Each term with the larger proportion first: the same float either way round, so
    # psi(a, b) == psi(b, a) exactly, at one log a bin. (zip is not strict: the bins
    # were checked, and strict zips are slower on this hot path.)
    terms = [
        (qi - pi) * log(qi / pi) if qi > pi else (pi - qi) * log(pi / qi)
        for pi, qi in zip(p, q, strict=False)
    ]
    return norm * sum(terms)


def jensen_shannon(
    baseline: Sequence[float], live: Sequence[float], *, epsilon: float = EPSILON
) -> float:
    """The Jensen-Shannon distance (square root of the divergence), base 2: in [0, 1].

    Over the smoothed proportions (see `proportions`); symmetric in its arguments.
    """
    p, q, norm = _smoothed(baseline, live, epsilon)
    log = math.log
    total = 0.0
    for pi, qi in zip(p, q, strict=False):
        mi = (pi + qi) * 0.5
        total += pi * log(pi / mi) + qi * log(qi / mi)
    divergence = norm * total / (2.0 * _LN2)
    # Rounding can put an identical pair a hair below 0 or a disjoint one above 1.
    return math.sqrt(min(1.0, max(0.0, divergence)))


def kolmogorov_smirnov(baseline: Sequence[float], live: Sequence[float]) -> float:
    """The Kolmogorov-Smirnov statistic of the binned CDFs: max |F_baseline - F_live|.

    On raw proportions (a CDF difference has no log to protect); symmetric, in [0, 1].
    """
    _same_bins(baseline, live)
    nb, nl = _total(baseline), _total(live)
    cb = cl = worst = 0.0
    for b, v in zip(baseline, live, strict=False):
        cb += b
        cl += v
        gap = abs(cb / nb - cl / nl)
        if gap > worst:
            worst = gap
    return min(1.0, worst)


_DISTANCES: Mapping[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "psi": psi,
    "ks": kolmogorov_smirnov,
    "jsd": jensen_shannon,
}


def score(method: Method, baseline: Sequence[float], live: Sequence[float]) -> float:
    """The drift of `live` from `baseline` by `method`: psi, ks or jsd."""
    try:
        distance = _DISTANCES[method]
    except KeyError:
        raise ValueError(f"unknown drift method {method!r} (use psi, ks or jsd)") from None
    return distance(baseline, live)


@dataclass(frozen=True)
class ChiSquare:
    """Pearson's chi-square test of homogeneity of two histograms."""

    statistic: float
    dof: int
    p_value: float


def chi_square(baseline: Sequence[float], live: Sequence[float]) -> ChiSquare:
    """Pearson's chi-square test of homogeneity on the 2 x k table of raw counts.

    Rows are the baseline and the live counts; bins empty in both are dropped; no
    continuity correction; dof = non-empty bins - 1 (statistic 0, p 1 when that is 0).
    Both rows need a positive total: an empty row has no expected counts.
    """
    _same_bins(baseline, live)
    rb, rl = _total(baseline), _total(live)
    # With two rows, sum (O - E)^2 / E over both cells of bin j is
    # R_b * R_l * (O_bj / R_b - O_lj / R_l)^2 / C_j: one pass, no expected table, and
    # no product of counts to overflow.
    acc = 0.0
    bins = 0
    for b, v in zip(baseline, live, strict=False):
        column = b + v
        if column > 0.0:
            d = b / rb - v / rl
            acc += d * d / column
            bins += 1
    dof = bins - 1
    if dof == 0:
        return ChiSquare(statistic=0.0, dof=0, p_value=1.0)
    statistic = acc * rb * rl
    return ChiSquare(statistic=statistic, dof=dof, p_value=_gamma_q(0.5 * dof, 0.5 * statistic))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    q_(i) = min over j >= i of p_(j) * m / j for the ascending p_(1..m), capped at 1:
    rejecting every q <= alpha controls the false discovery rate at alpha.
    """
    m = len(p_values)
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"a p-value must be in [0, 1], got {p!r}")
    order = sorted(range(m), key=p_values.__getitem__)
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = running
    return adjusted


def aligned(
    baseline: Mapping[str, float], live: Mapping[str, float]
) -> tuple[list[float], list[float]]:
    """Two categorical distributions (class -> count) as count vectors over the same bins.

    The bins are the union of the keys: the baseline's in their order, then the classes
    only live has seen, sorted; a class missing on one side counts 0 there.
    """
    keys = list(baseline) + sorted(k for k in live if k not in baseline)
    return [baseline.get(k, 0.0) for k in keys], [live.get(k, 0.0) for k in keys]


def _total(counts: Sequence[float]) -> float:
    if not counts:
        raise ValueError("counts need at least one bin")
    total = sum(counts)
    if not math.isfinite(total) or min(counts) < 0.0:
        raise ValueError("counts must be finite and non-negative")
    if total <= 0.0:
        raise ValueError("the counts are all zero: there is no distribution to compare")
    return total


def _same_bins(baseline: Sequence[float], live: Sequence[float]) -> None:
    if len(baseline) != len(live):
        raise ValueError(
            f"baseline and live counts are over different bins ({len(baseline)} vs {len(live)})"
        )


def _smoothed(
    baseline: Sequence[float], live: Sequence[float], epsilon: float
) -> tuple[list[float], list[float], float]:
    """The smoothed proportions of both, before the common 1 / (1 + k * epsilon).

    That factor scales p and q alike: it leaves every ratio alone and comes out of the
    sums as the third value, one multiplication instead of 2k.
    """
    _same_bins(baseline, live)
    nb, nl = _total(baseline), _total(live)
    return (
        [c / nb + epsilon for c in baseline],
        [c / nl + epsilon for c in live],
        1.0 / (1.0 + len(baseline) * epsilon),
    )


# The chi-square p-value is the regularized upper incomplete gamma Q(dof/2, stat/2).
# Written here rather than imported: scipy.special.gammaincc would bring scipy and
# numpy into the operator's image and tens of MB into its memory for one function.
# Numerical Recipes' split (series below a + 1, Lentz's continued fraction above),
# with the prefactor x^a e^-x / Gamma(a) from Stirling's series for a >= 10: with
# math.lgamma its exponent loses ~1e-16 * a * ln(a) to cancellation, 1e-10 by a = 1e5.

_TOLERANCE = 1e-15
_TINY = 1e-300
_MAX_TERMS = 1_000_000
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)
# Stirling's series of ln Gamma, the coefficients of a^-1, a^-3, ..., a^-13: the next
# term, 3617 / (122400 a^15), is below 3e-17 for a >= 10.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)


def _gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a), for a > 0 and x >= 0."""
    if not a > 0.0 or not x >= 0.0:
        raise ValueError(f"the incomplete gamma needs a > 0 and x >= 0, got a={a!r}, x={x!r}")
    if x == 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return 1.0 - _gamma_p_series(a, x)
    return _gamma_q_fraction(a, x)


def _gamma_p_series(a: float, x: float) -> float:
    """P(a, x) = x^a e^-x / Gamma(a) * sum x^n / (a (a+1) ... (a+n)); for x < a + 1."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(_MAX_TERMS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if term < total * _TOLERANCE:
            return total * _gamma_prefactor(a, x)
    raise ArithmeticError(f"the incomplete gamma series did not converge for a={a}, x={x}")


def _gamma_q_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction, modified Lentz; for x >= a + 1."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _TOLERANCE:
            return h * _gamma_prefactor(a, x)
    raise ArithmeticError(f"the incomplete gamma fraction did not converge for a={a}, x={x}")


def _gamma_prefactor(a: float, x: float) -> float:
    """x^a e^-x / Gamma(a), accurate also for large a and x."""
    if a < 10.0:
        return math.exp(a * math.log(x) - x - math.lgamma(a))
    # ln Gamma(a) = (a - 1/2) ln a - a + ln(2 pi) / 2 + S(a), so the log of the
    # prefactor is a * (ln(1 + u) - u) + ln(a / 2 pi) / 2 - S(a), u = (x - a) / a:
    # no large terms to cancel.
    exponent = a * _log1p_minus((x - a) / a) - _stirling_remainder(a)
    return math.exp(exponent + 0.5 * math.log(a) - _HALF_LN_2PI)


def _log1p_minus(u: float) -> float:
    """ln(1 + u) - u, without the cancellation near u = 0."""
    if abs(u) >= 0.1:
        return math.log1p(u) - u
    # ln(1 + u) = 2 atanh(v), v = u / (2 + u), and 2v - u = -u v; the odd powers of v
    # fall by v^2 <= 0.0028 a term.
    v = u / (2.0 + u)
    v2 = v * v
    power = v
    odd = 0.0
    k = 3.0
    while True:
        power *= v2
        step = power / k
        odd += step
        if abs(step) <= abs(odd) * 1e-17:
            return 2.0 * odd - u * v
        k += 2.0


def _stirling_remainder(a: float) -> float:
    """ln Gamma(a) - ((a - 1/2) ln a - a + ln(2 pi) / 2), by its series; for a >= 10."""
    r = 1.0 / a
    r2 = r * r
    total = 0.0
    for coefficient in reversed(_STIRLING):
        total = total * r2 + coefficient
    return total * r
