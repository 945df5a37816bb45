"""The ONNX profile: fields present and sane; the resource formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from edgeml.training.export import convert_to_onnx
from edgeml.training.profiling import (
    profile_onnx,
    read_memory_status,
    recommend_resources,
    summarize_latencies,
)

MiB = 2**20


@pytest.fixture(scope="module")
def model_and_rows() -> tuple[bytes, np.ndarray]:
    x, y = make_classification(300, 10, random_state=0)
    x = x.astype(np.float32)
    estimator = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    encoding = {"columns": [], "categorical": {}, "inputs": []}
    model = convert_to_onnx(estimator, 10, "classification", encoding, "rf")
    return model.SerializeToString(), x[:50]


@pytest.mark.parametrize("in_child", [True, False], ids=["child", "in-process"])
def test_profile_fields_are_present_and_sane(
    model_and_rows: tuple[bytes, np.ndarray], in_child: bool
) -> None:
    model_bytes, rows = model_and_rows
    profile = profile_onnx(model_bytes, rows, in_child=in_child)
    assert profile["measuredIn"] == ("child" if in_child else "training process")
    assert profile["modelBytes"] == len(model_bytes)
    assert profile["threads"] == 1
    assert profile["runtime"].startswith("onnxruntime ")
    assert 0 < profile["loadMs"] < 10_000
    single, batch = profile["singleRow"], profile["batch64"]
    assert single["runs"] == 200
    assert 20 <= batch["runs"] <= 200
    assert 0 < single["p50Ms"] <= single["p99Ms"] < 1000
    assert 0 < batch["p50Ms"] <= batch["p99Ms"]
    memory = profile["memory"]
    assert memory["rssBeforeBytes"] > 0
    assert memory["peakRssBytes"] >= memory["rssAfterBytes"] > 0
    assert memory["modelRssBytes"] >= 0
    assert profile["recommended"]["cpu"].endswith("m")
    assert profile["recommended"]["memory"].endswith("Mi")
    if in_child:  # a process holding only numpy, onnxruntime and this model
        assert memory["peakRssBytes"] < 400 * MiB


def test_memory_recommendation_rounds_up_to_16_mib() -> None:
    assert recommend_resources(0.01, 0)["memory"] == "32Mi"
    assert recommend_resources(0.01, 50 * MiB)["memory"] == "96Mi"  # 50 + 32 -> 96
    assert recommend_resources(0.01, 64 * MiB)["memory"] == "96Mi"  # exactly 96


def test_cpu_recommendation_grows_with_latency() -> None:
    assert recommend_resources(0.01, 0)["cpu"] == "60m"  # (0.01 + 1) ms x 50/s = 50.5m
    assert recommend_resources(0.0, 0)["cpu"] == "50m"
    assert recommend_resources(9.0, 0)["cpu"] == "500m"  # (9 + 1) x 50


def test_reads_proc_status() -> None:
    text = "Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads: 1\n"
    assert read_memory_status(text) == {"VmHWM": 2048 * 1024, "VmRSS": 1024 * 1024}


def test_latency_summary_in_milliseconds() -> None:
    summary = summarize_latencies([0.001] * 99 + [0.01])
    assert summary["runs"] == 100
    assert summary["p50Ms"] == pytest.approx(1.0)
    assert 1.0 < summary["p99Ms"] <= 10.0
