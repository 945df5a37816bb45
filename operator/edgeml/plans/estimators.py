"""Pure: which estimator classes a training Job may import, which metrics go together,
and whether a training template as a whole can be given to a Job.

Shared by the operator (InvalidSpec before any Job runs) and `edgeml train` (which checks
again before it imports anything), so both refuse the same class paths the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgeml.api.edgemodel import DEFAULT_METRICS, TrainingTemplate
from edgeml.plans.volumes import volumes_problem

CLASSIFICATION_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})


def class_path_problem(class_path: str, allowed_modules: Sequence[str]) -> tuple[str, str] | None:
    """(reason, message) when `class_path` may not be imported, else None.

    An allow-list entry is a top-level module (`sklearn`) or a dotted prefix
    (`sklearn.ensemble`); the path must be that module or lie under it, and may not reach
    into private names.
    """
    parts = class_path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return "InvalidEstimator", f"{class_path!r} is not a dotted path such as module.Class"
    private = next((part for part in parts if part.startswith("_")), None)
    if private is not None:
        return "EstimatorNotAllowed", f"{class_path}: private name {private!r} is not allowed"
    module = ".".join(parts[:-1])
    if not any(module == entry or module.startswith(entry + ".") for entry in allowed_modules):
        return (
            "EstimatorNotAllowed",
            f"module {module} is not in the allow-list ({', '.join(allowed_modules)})",
        )
    return None


# scikit-learn's estimators whose names do not end in Classifier or Regressor. The
# operator image has no scikit-learn, so it cannot ask `is_classifier`; a class in
# neither list is checked only by the training Job (InvalidConfig).
_SKLEARN_CLASSIFIERS = frozenset(
    {
        "LogisticRegression", "LogisticRegressionCV", "SVC", "NuSVC", "LinearSVC",
        "GaussianNB", "MultinomialNB", "BernoulliNB", "ComplementNB", "CategoricalNB",
        "LinearDiscriminantAnalysis", "QuadraticDiscriminantAnalysis", "Perceptron",
        "NearestCentroid", "RidgeClassifierCV", "LabelPropagation", "LabelSpreading",
    }
)  # fmt: skip
_SKLEARN_REGRESSORS = frozenset(
    {
        "LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet",
        "ElasticNetCV", "Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC",
        "BayesianRidge", "ARDRegression", "SVR", "NuSVR", "LinearSVR", "KernelRidge",
        "IsotonicRegression", "OrthogonalMatchingPursuit", "PLSRegression",
    }
)  # fmt: skip


def estimator_task(class_path: str) -> str | None:
    """The task of a scikit-learn estimator whose name tells it ("classification" or
    "regression"); None when it cannot be told without importing it."""
    module, _, name = class_path.rpartition(".")
    if module != "sklearn" and not module.startswith("sklearn."):
        return None
    if name.endswith("Classifier") or name in _SKLEARN_CLASSIFIERS:
        return "classification"
    if name.endswith("Regressor") or name in _SKLEARN_REGRESSORS:
        return "regression"
    return None


def task_mismatch(class_path: str, metrics: Sequence[str]) -> str | None:
    """Why these metrics cannot be computed for this estimator's task, else None."""
    task = estimator_task(class_path)
    other = REGRESSION_METRICS if task == "classification" else CLASSIFICATION_METRICS
    wrong = sorted(set(metrics) & other) if task else []
    if not wrong:
        return None
    kind = "classifier" if task == "classification" else "regressor"
    what = f"is not a {task} metric" if len(wrong) == 1 else f"are not {task} metrics"
    return f"{', '.join(wrong)} {what}, and {class_path} is a {kind}"


def mixed_metrics(metrics: Sequence[str]) -> str | None:
    """Why a list of metrics cannot all apply to one model (it mixes tasks), else None."""
    classification = sorted(set(metrics) & CLASSIFICATION_METRICS)
    regression = sorted(set(metrics) & REGRESSION_METRICS)
    if classification and regression:
        return (
            f"mixes classification metrics ({', '.join(classification)}) with regression "
            f"metrics ({', '.join(regression)}); a model is a classifier or a regressor"
        )
    return None


def check_template(
    training: TrainingTemplate,
    allowed_modules: Sequence[str],
    where: str,
    allowed_volume_types: Sequence[str] = (),
) -> str | None:
    """A training template that cannot train, or may not: the estimator outside the
    allow-list, evaluation metrics of two tasks (each fails only inside the Job
    otherwise), or volumes outside the operator's allow-list or mounts of no volume."""
    if allowed_modules:
        problem = class_path_problem(training.estimator.class_path, allowed_modules)
        if problem is not None:
            return (
                f"{where}.estimator.class: {problem[1]}; training Jobs may import only what "
                "the operator's training.allowedModules names (Helm value)"
            )
    mixed = mixed_metrics(training.evaluation.metrics)
    if mixed is not None:
        return f"{where}.evaluation.metrics {mixed}"
    metrics = training.evaluation.metrics
    # The API's default (accuracy, f1) is a classification default that the training
    # program swaps for rmse, mae, r2 on a regressor: only metrics asked for are checked.
    asked = [] if tuple(metrics) == DEFAULT_METRICS else metrics
    mismatch = task_mismatch(training.estimator.class_path, asked)
    if mismatch is not None:
        return f"{where}.evaluation.metrics: {mismatch}"
    return volumes_problem(training.volumes, training.volume_mounts, allowed_volume_types, where)
