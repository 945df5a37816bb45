"""Which estimator to fit: the allow-list, the import, the construction.

The class path is checked against the allow-list before anything is imported, so a
path such as `os.system` is refused without `os` being touched by this program.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from edgeml.plans.estimators import class_path_problem
from edgeml.training.datasets import Task
from edgeml.training.errors import TrainingError


def check_class_path(class_path: str, allowed_modules: list[str]) -> None:
    """Refuse a class path outside the allow-list, or one reaching into private names
    (plans.estimators, the operator's own check). Pure: imports nothing."""
    problem = class_path_problem(class_path, allowed_modules)
    if problem is not None:
        raise TrainingError(*problem)


def load_estimator_class(class_path: str) -> type[Any]:
    """Import the class at `class_path`; it must be a class with fit and predict.

    Call `check_class_path` first: this imports the module.
    """
    module_name, _, class_name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise TrainingError("UnknownEstimator", f"{class_path} does not exist") from exc
    except Exception as exc:  # a module that fails at import time is unusable, whatever the type
        raise TrainingError(
            "UnknownEstimator", f"{class_path}: importing {module_name} failed: {exc}"
        ) from exc
    found = getattr(module, class_name, None)
    if found is None:
        raise TrainingError("UnknownEstimator", f"{class_path} does not exist")
    if not inspect.isclass(found):
        raise TrainingError("InvalidEstimator", f"{class_path} is not a class")
    if not (callable(getattr(found, "fit", None)) and callable(getattr(found, "predict", None))):
        raise TrainingError(
            "InvalidEstimator", f"{class_path} is not an estimator (it has no fit and predict)"
        )
    return found


def estimator_task(estimator: Any, class_path: str) -> Task:
    """Whether the estimator is a classifier or a regressor; anything else is refused."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise TrainingError("InvalidEstimator", f"{class_path} is neither a classifier nor a regressor")


def build_estimator(cls: type[Any], class_path: str, params: dict[str, Any], seed: int) -> Any:
    """An instance of `cls` with `params`; `random_state` is the seed unless params set it.

    Unknown or mistyped parameters are `InvalidParams`.
    """
    try:
        accepted = set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        accepted = set()
    arguments = dict(params)
    if "random_state" in accepted and "random_state" not in arguments:
        arguments["random_state"] = seed
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as exc:
        raise TrainingError("InvalidParams", f"{class_path}: {exc}") from exc


def fit_estimator(estimator: Any, class_path: str, features: Any, target: Any) -> Any:
    """Fit the estimator; scikit-learn's parameter validation failures are `InvalidParams`,
    other refusals of the data are `FitFailed`."""
    try:
        from sklearn.utils._param_validation import InvalidParameterError
    except ImportError:  # private module moved: fall back to the message check below
        invalid_parameter: tuple[type[BaseException], ...] = ()
    else:
        invalid_parameter = (InvalidParameterError,)
    try:
        estimator.fit(features, target)
    except invalid_parameter as exc:
        raise TrainingError("InvalidParams", f"{class_path}: {exc}") from exc
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise TrainingError("FitFailed", f"{class_path}.fit failed: {exc}") from exc
    return estimator
