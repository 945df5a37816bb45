"""Bad objects are refused by the API server itself, each with a message a person can act on.

Every case starts from a valid object (which the first test proves is accepted) and
breaks one thing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from support.objects import BUILDERS, DELETE, PLURALS, merge

GROUP, VERSION = "edgeml.io", "v1alpha1"

# (case id, kind, change to the spec, expected text in the API server's refusal)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # EdgeModel
    ("model-missing-training", "EdgeModel", {"training": DELETE}, "spec.training: Required value"),
    (
        "model-dataset-ftp",
        "EdgeModel",
        {"training": {"dataset": {"uri": "ftp://x/y.csv"}}},
        "spec.training.dataset.uri in body should match",
    ),
    (
        "model-dataset-format",
        "EdgeModel",
        {"training": {"dataset": {"format": "xlsx"}}},
        'spec.training.dataset.format: Unsupported value: "xlsx"',
    ),
    (
        "model-missing-target",
        "EdgeModel",
        {"training": {"dataset": {"target": DELETE}}},
        "spec.training.dataset.target: Required value",
    ),
    (
        "model-test-fraction-range",
        "EdgeModel",
        {"training": {"evaluation": {"testFraction": 0.9}}},
        "testFraction in body should be less than or equal to 0.5",
    ),
    (
        "model-estimator-class",
        "EdgeModel",
        {"training": {"estimator": {"class": "os system()"}}},
        "spec.training.estimator.class in body should match",
    ),
    (
        "model-unknown-metric",
        "EdgeModel",
        {"training": {"evaluation": {"metrics": ["vibes"]}}},
        'Unsupported value: "vibes"',
    ),
    (
        "model-promotion-mode",
        "EdgeModel",
        {"promotion": {"mode": "Sometimes"}},
        'spec.promotion.mode: Unsupported value: "Sometimes"',
    ),
    (
        "model-gate-two-limits",
        "EdgeModel",
        {"promotion": {"gates": [{"metric": "f1", "min": 0.8, "max": 0.9}]}},
        "a gate sets exactly one of min, max, notWorseThanChampionBy or maxSliceGap",
    ),
    (
        "model-local-tracking-store",
        "EdgeModel",
        {"registry": {"trackingUri": "file:///tmp/mlruns"}},
        "trackingUri: a file:// store is a directory on one machine",
    ),
    (
        "model-dataset-gs",
        "EdgeModel",
        {"training": {"dataset": {"uri": "gs://bucket/vibration.csv"}}},
        "gs:// datasets are not supported yet",
    ),
    (
        "run-override-gs",
        "TrainingRun",
        {"overrides": {"dataset": {"uri": "gs://bucket/v.csv", "target": "label"}}},
        "gs:// datasets are not supported yet",
    ),
    (
        "model-dataset-s3-bad-bucket",
        "EdgeModel",
        {"training": {"dataset": {"uri": "s3://Bad_Bucket/v.csv"}}},
        "an s3:// URI is s3://BUCKET/KEY or s3://BUCKET/PREFIX/",
    ),
    (
        "model-dataset-s3-options-on-http",
        "EdgeModel",
        {"training": {"dataset": {"uri": "https://data.example/v.csv", "s3": {}}}},
        "s3: applies to s3:// datasets only",
    ),
    (
        "model-dataset-s3-header-credentials",
        "EdgeModel",
        {
            "training": {
                "dataset": {
                    "uri": "s3://bucket/v.csv",
                    "credentialsSecretRef": {"name": "keys", "key": "token"},
                }
            }
        },
        "an s3:// dataset's keys go in s3.credentialsSecretRef",
    ),
    (
        "model-dataset-newest-of-one-object",
        "EdgeModel",
        {"training": {"dataset": {"uri": "s3://bucket/v.csv", "select": "Newest"}}},
        "select: Newest applies to an s3:// prefix",
    ),
    (
        "model-dataset-s3-endpoint-path",
        "EdgeModel",
        {
            "training": {
                "dataset": {"uri": "s3://bucket/v/", "s3": {"endpoint": "http://h:9000/x/y"}}
            }
        },
        "spec.training.dataset.s3.endpoint in body should match",
    ),
    (
        "policy-newdata-interval-short",
        "DriftPolicy",
        {"newData": {"interval": "1s"}},
        "newData.interval must be between 10s and 24h",
    ),
    (
        "model-gate-no-limit",
        "EdgeModel",
        {"promotion": {"gates": [{"metric": "f1"}]}},
        "a gate sets exactly one of min, max",
    ),
    (
        "model-backoff-negative",
        "EdgeModel",
        {"training": {"backoffLimit": -1}},
        "backoffLimit in body should be greater than or equal to 0",
    ),
    (
        "model-history-wrong-type",
        "EdgeModel",
        {"versionHistoryLimit": "ten"},
        "spec.versionHistoryLimit in body must be of type integer",
    ),
    (
        "model-resources-gpu",
        "EdgeModel",
        {"training": {"resources": {"requests": {"gpu": "1"}}}},
        "keys must be among cpu, memory",
    ),
    (
        "model-resources-quantity",
        "EdgeModel",
        {"training": {"resources": {"requests": {"memory": "lots"}}}},
        "should match",
    ),
    # TrainingRun
    ("run-missing-model", "TrainingRun", {"modelRef": DELETE}, "spec.modelRef: Required value"),
    (
        "run-bad-model-name",
        "TrainingRun",
        {"modelRef": {"name": "Bad_Name"}},
        "spec.modelRef.name in body should match",
    ),
    (
        "run-unknown-trigger",
        "TrainingRun",
        {"trigger": "Cron"},
        'spec.trigger: Unsupported value: "Cron"',
    ),
    # EdgeDeployment
    (
        "deploy-version-and-alias",
        "EdgeDeployment",
        {"modelRef": {"version": 3, "alias": "champion"}},
        "set exactly one of version",
    ),
    (
        "deploy-neither-version-nor-alias",
        "EdgeDeployment",
        {"modelRef": {"alias": DELETE}},
        "set exactly one of version",
    ),
    (
        "deploy-version-zero",
        "EdgeDeployment",
        {"modelRef": {"alias": DELETE, "version": 0}},
        "spec.modelRef.version in body should be greater than or equal to 1",
    ),
    (
        "deploy-empty-selector",
        "EdgeDeployment",
        {"nodeSelector": {}},
        "spec.nodeSelector in body should have at least 1 properties",
    ),
    (
        "deploy-step-two-kinds",
        "EdgeDeployment",
        {"strategy": {"canary": {"steps": [{"nodes": 1, "pause": {}}]}}},
        "a step sets exactly one of nodes, analysis or pause",
    ),
    (
        "deploy-percent-over-100",
        "EdgeDeployment",
        {"strategy": {"canary": {"steps": [{"nodes": "150%"}]}}},
        "should match",
    ),
    (
        "deploy-negative-count",
        "EdgeDeployment",
        {"strategy": {"canary": {"steps": [{"nodes": -2}]}}},
        "should be greater than or equal to 0",
    ),
    (
        "deploy-analysis-without-template",
        "EdgeDeployment",
        {"strategy": {"canary": {"analysis": DELETE}}},
        "needs an analysis template",
    ),
    (
        "deploy-steps-never-move-nodes",
        "EdgeDeployment",
        {"strategy": {"canary": {"steps": [{"pause": {}}]}}},
        "steps must move nodes at least once",
    ),
    (
        "deploy-bad-duration",
        "EdgeDeployment",
        {"strategy": {"canary": {"analysis": {"interval": "30 seconds"}}}},
        "spec.strategy.canary.analysis.interval in body should match",
    ),
    (
        "deploy-unknown-analysis-metric",
        "EdgeDeployment",
        {"strategy": {"canary": {"analysis": {"metrics": [{"name": "accuracy", "max": 1}]}}}},
        'Unsupported value: "accuracy"',
    ),
    (
        "deploy-prometheus-without-address",
        "EdgeDeployment",
        {"strategy": {"canary": {"analysis": {"source": {"type": "Prometheus"}}}}},
        "a Prometheus source needs prometheus.address",
    ),
    (
        "deploy-privileged-port",
        "EdgeDeployment",
        {"serving": {"port": 80}},
        "spec.serving.port in body should be greater than or equal to 1024",
    ),
    (
        "deploy-toleration-effect",
        "EdgeDeployment",
        {"tolerations": [{"key": "x", "effect": "Sometimes"}]},
        'Unsupported value: "Sometimes"',
    ),
    # DriftPolicy
    (
        "drift-nothing-to-watch",
        "DriftPolicy",
        {"dataDrift": DELETE},
        "set at least one of dataDrift, conceptDrift, schedule, newData or codeChange",
    ),
    (
        "drift-missing-deployment",
        "DriftPolicy",
        {"deploymentRef": DELETE},
        "spec.deploymentRef: Required value",
    ),
    (
        "drift-malformed-cron",
        "DriftPolicy",
        {"schedule": "every day"},
        "spec.schedule in body should match",
    ),
    (
        "drift-jsd-threshold",
        "DriftPolicy",
        {"dataDrift": {"method": "jsd", "threshold": 2}},
        "a Jensen-Shannon (jsd) threshold must be at most 1",
    ),
    (
        "drift-zero-threshold",
        "DriftPolicy",
        {"dataDrift": {"threshold": 0}},
        "spec.dataDrift.threshold in body should be greater than 0",
    ),
    (
        "drift-unknown-action",
        "DriftPolicy",
        {"action": "Page"},
        'spec.action: Unsupported value: "Page"',
    ),
    (
        "drift-concept-both-limits",
        "DriftPolicy",
        {"conceptDrift": {"metric": "accuracy", "minimum": 0.8, "maximum": 0.9}},
        "set exactly one of minimum",
    ),
    (
        "drift-bad-cooldown",
        "DriftPolicy",
        {"cooldown": "6 hours"},
        "spec.cooldown in body should match",
    ),
    (
        "drift-window-too-short",
        "DriftPolicy",
        {"dataDrift": {"window": "30s"}},
        "window must be between 1m and 24h",
    ),
    (
        "drift-window-too-long",
        "DriftPolicy",
        {"dataDrift": {"window": "25h"}},
        "window must be between 1m and 24h",
    ),
    (
        "drift-interval-too-short",
        "DriftPolicy",
        {"evaluation": {"interval": "1s"}},
        "interval must be at least 5s",
    ),
    (
        "drift-hysteresis-range",
        "DriftPolicy",
        {"evaluation": {"hysteresis": 1}},
        "spec.evaluation.hysteresis in body should be less than 1",
    ),
    (
        "drift-receiver-name",
        "DriftPolicy",
        {"notify": [{"name": "Ops Team", "secretRef": {"name": "hook"}}]},
        "spec.notify[0].name in body should match",
    ),
    (
        "drift-receiver-format",
        "DriftPolicy",
        {"notify": [{"name": "ops", "secretRef": {"name": "hook"}, "format": "Slack"}]},
        'Unsupported value: "Slack"',
    ),
    (
        "drift-receiver-twice",
        "DriftPolicy",
        {
            "notify": [
                {"name": "ops", "secretRef": {"name": "a"}},
                {"name": "ops", "secretRef": {"name": "b"}},
            ]
        },
        "Duplicate value",
    ),
]


def _create(custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> Any:
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body
    )


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_valid_object_of_each_kind_is_accepted(
    crds: list[str], custom: client.CustomObjectsApi, namespace: str, kind: str
) -> None:
    created = _create(custom, namespace, BUILDERS[kind]())
    assert created["metadata"]["generation"] == 1


@pytest.mark.parametrize(("case", "kind", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_object_is_refused_with_a_clear_message(
    crds: list[str],
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    kind: str,
    change: dict[str, Any],
    expected: str,
) -> None:
    valid = BUILDERS[kind]()
    bad = merge(valid, {"spec": change})
    with pytest.raises(client.ApiException) as refused:
        _create(custom, namespace, bad)
    assert refused.value.status == 422, refused.value.body
    message = json.loads(refused.value.body)["message"]
    assert expected in message, f"{case}: expected {expected!r} in {message!r}"


def test_trainingrun_spec_cannot_be_edited(
    crds: list[str], custom: client.CustomObjectsApi, namespace: str
) -> None:
    run = BUILDERS["TrainingRun"]()
    _create(custom, namespace, run)
    with pytest.raises(client.ApiException) as refused:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "trainingruns",
            run["metadata"]["name"],
            {"spec": {"trigger": "Drift"}},
        )
    assert refused.value.status == 422
    assert "a TrainingRun's spec is immutable: create a new TrainingRun" in refused.value.body
