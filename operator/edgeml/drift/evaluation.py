"""One drift evaluation: live window counts against each version's baseline, per group.

A group is the fleet (every pod) or one zone (`topology.kubernetes.io/zone` of the pods'
nodes). Within a group each version is compared with its own baseline (a rollout may
have two versions serving); the group drifted when a version with enough samples did,
and the group's headline is the version with the most rows.

The decision is the effect size: a feature drifted when its score (PSI, JSD or KS)
exceeds the threshold. Sample size guards it from both sides: below `minSamples` rows
nothing is decided, and a chi-square test of the bin counts with Benjamini-Hochberg
correction across features is reported beside each score (its q-value), without
deciding: at edge volumes a p-value flags negligible shifts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from edgeml.drift.baseline import Baseline
from edgeml.drift.concept import classification_metric, regression_metric
from edgeml.drift.statistics import Method, aligned, benjamini_hochberg, chi_square, score
from edgeml.drift.windows import WindowCounts

FLEET = ""
"""The group name of the whole fleet (zones have their own names)."""
ConceptMetric = Literal["accuracy", "f1", "precision", "recall", "rmse", "mae"]


@dataclass(frozen=True)
class ConceptSettings:
    """Concept drift from feedback labels."""

    metric: ConceptMetric
    minimum: float | None = None
    maximum: float | None = None
    min_samples: int = 100


@dataclass(frozen=True)
class DriftSettings:
    """What the policy's spec says drift is."""

    method: Method = "psi"
    threshold: float = 0.2
    prediction_threshold: float | None = None
    """The prediction drift threshold; `threshold` when None."""
    min_samples: int = 500
    features: tuple[str, ...] | None = None
    """Features (or categorical columns) to score; all when None."""
    data: bool = True
    """Whether inputs and predictions are scored (spec.dataDrift is set)."""
    concept: ConceptSettings | None = None


@dataclass(frozen=True)
class FeatureScore:
    """One feature's score in one group."""

    name: str
    score: float
    p_value: float
    q_value: float = 1.0
    drifted: bool = False


@dataclass(frozen=True)
class ConceptScore:
    """The live metric from feedback, and how much of the window was labelled."""

    metric: str
    value: float | None
    labelled: float
    coverage: float | None
    drifted: bool = False


Verdict = Literal["Drifted", "NoDrift", "TooFewSamples"]


@dataclass(frozen=True)
class GroupEvaluation:
    """One group's result for one version."""

    group: str
    version: str
    rows: float
    pods: int
    verdict: Verdict
    features: tuple[FeatureScore, ...] = ()
    """Worst first."""
    prediction: float | None = None
    prediction_drifted: bool = False
    concept: ConceptScore | None = None
    reasons: tuple[str, ...] = ()
    """DataDrift, PredictionDrift, ConceptDrift: what drifted."""

    @property
    def drifted_features(self) -> tuple[FeatureScore, ...]:
        """The features over the threshold, worst first."""
        return tuple(f for f in self.features if f.drifted)


@dataclass(frozen=True)
class Evaluation:
    """Every group's headline result, the fleet first; empty when no pod answered."""

    groups: tuple[GroupEvaluation, ...] = ()
    versions: Mapping[str, tuple[GroupEvaluation, ...]] = field(default_factory=dict)
    """Every (group, version) result, by group."""

    @property
    def fleet(self) -> GroupEvaluation | None:
        """The fleet's headline result."""
        return next((g for g in self.groups if g.group == FLEET), None)

    @property
    def zones(self) -> tuple[GroupEvaluation, ...]:
        """Each zone's headline result, in zone order."""
        return tuple(g for g in self.groups if g.group != FLEET)

    @property
    def drifted(self) -> bool:
        """Whether any group drifted, in any version with enough samples."""
        return any(g.verdict == "Drifted" for gs in self.versions.values() for g in gs)

    @property
    def decided(self) -> bool:
        """Whether any group had enough samples to decide."""
        return any(g.verdict != "TooFewSamples" for gs in self.versions.values() for g in gs)


def unknown_features(settings: DriftSettings, baseline: Baseline) -> list[str]:
    """Names in `settings.features` that are neither an input nor a categorical column."""
    if settings.features is None:
        return []
    known = set(baseline.features) | set(baseline.categorical)
    return [name for name in settings.features if name not in known]


def distributions(
    baseline: Baseline, live: WindowCounts, wanted: Sequence[str] | None
) -> dict[str, tuple[Sequence[float], Sequence[float]]]:
    """(baseline, live) counts per scored feature.

    A categorical column is scored as one distribution over its categories (the rows
    whose one-hot input is 1, which the top bin of each input counts) and replaces its
    one-hot inputs; other features are compared bin for bin.
    """
    out: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
    one_hot = {name for names in baseline.categorical.values() for name in names}
    for column, inputs in baseline.categorical.items():
        if wanted is not None and column not in wanted:
            continue
        if not all(name in baseline.features and name in live.features for name in inputs):
            continue
        out[column] = (
            [baseline.features[n][-1] for n in inputs],
            [live.features[n][-1] for n in inputs],
        )
    for name, counts in baseline.features.items():
        if name in one_hot or (wanted is not None and name not in wanted):
            continue
        seen = live.features.get(name)
        if seen is not None and len(seen) == len(counts):
            out[name] = (counts, seen)
    return out


def _concept(settings: ConceptSettings, live: WindowCounts, classes: Sequence[str]) -> ConceptScore:
    labelled = live.labelled
    coverage = labelled / live.rows if live.rows else None
    value: float | None = None
    if labelled >= settings.min_samples:
        if settings.metric in ("mae", "rmse"):
            value = regression_metric(
                settings.metric, labelled, live.absolute_error_sum, live.squared_error_sum
            )
        else:
            value = classification_metric(settings.metric, live.confusion, classes or None)
    drifted = value is not None and (
        (settings.minimum is not None and value < settings.minimum)
        or (settings.maximum is not None and value > settings.maximum)
    )
    return ConceptScore(settings.metric, value, labelled, coverage, drifted)


def evaluate_group(
    group: str, baseline: Baseline, live: WindowCounts, settings: DriftSettings
) -> GroupEvaluation:
    """Score one group's window of one version against that version's baseline."""
    concept = _concept(settings.concept, live, list(baseline.classes)) if settings.concept else None
    enough = settings.data and live.rows >= settings.min_samples
    if not enough and not (concept and concept.value is not None):
        return GroupEvaluation(group, live.version, live.rows, live.pods, "TooFewSamples",
                               concept=concept)  # fmt: skip
    features: list[FeatureScore] = []
    prediction: float | None = None
    prediction_drifted = False
    if enough:
        pairs = distributions(baseline, live, settings.features)
        raw = []
        for name, (base, seen) in pairs.items():
            if sum(seen) <= 0 or sum(base) <= 0:
                continue
            raw.append((name, score(settings.method, base, seen), chi_square(base, seen).p_value))
        q_values = benjamini_hochberg([p for _, _, p in raw]) if raw else []
        features = sorted(
            (
                FeatureScore(name, s, p, q, s > settings.threshold)
                for (name, s, p), q in zip(raw, q_values, strict=True)
            ),
            key=lambda f: (-f.score, f.name),
        )
        if baseline.prediction_kind == "classification":
            base_p, seen_p = aligned(baseline.classes, live.classes)
        else:
            base_p, seen_p = list(baseline.prediction_bins), list(live.prediction_bins)
        if sum(seen_p) > 0 and sum(base_p) > 0 and len(base_p) == len(seen_p):
            prediction = score(settings.method, base_p, seen_p)
            limit = settings.prediction_threshold or settings.threshold
            prediction_drifted = prediction > limit
    reasons = []
    if any(f.drifted for f in features):
        reasons.append("DataDrift")
    if prediction_drifted:
        reasons.append("PredictionDrift")
    if concept is not None and concept.drifted:
        reasons.append("ConceptDrift")
    return GroupEvaluation(
        group,
        live.version,
        live.rows,
        live.pods,
        "Drifted" if reasons else "NoDrift",
        tuple(features),
        prediction,
        prediction_drifted,
        concept,
        tuple(reasons),
    )


def evaluate(
    baselines: Mapping[str, Baseline],
    groups: Mapping[str, Mapping[str, WindowCounts]],
    settings: DriftSettings,
) -> Evaluation:
    """Evaluate every group (fleet "" and zones) for every version that has a baseline.

    `groups[group][version]` is the group's summed window of that version.
    """
    headline: list[GroupEvaluation] = []
    every: dict[str, tuple[GroupEvaluation, ...]] = {}
    for group in sorted(groups):
        results = tuple(
            evaluate_group(group, baselines[version], live, settings)
            for version, live in sorted(groups[group].items())
            if version in baselines
        )
        if not results:
            continue
        every[group] = results
        headline.append(max(results, key=lambda r: (r.rows, r.version)))
    return Evaluation(tuple(headline), every)
