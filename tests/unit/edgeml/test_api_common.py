"""The shared API types: durations, cron, percent-or-count, the model base, conditions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError

from edgeml.api.common import (
    API_VERSION,
    CRON_PATTERN,
    Condition,
    Cron,
    Duration,
    KubeModel,
    LocalObjectReference,
    PercentOrCount,
    ResourceRequirements,
    StatusBase,
    check_cron,
    parse_duration,
    resolve_percent_or_count,
)

# No deadline: these run on shared, busy machines; 50 examples keep the suite quick.
PROPERTY = settings(max_examples=50, deadline=None)

DURATION = TypeAdapter(Duration)
CRON = TypeAdapter(Cron)
PERCENT_OR_COUNT = TypeAdapter(PercentOrCount)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_api_version_is_group_slash_version() -> None:
    assert API_VERSION == "edgeml.io/v1alpha1"


# --- parse_duration / Duration ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0),
        ("30s", 30),
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2m30s", 150),
        ("250ms", 0.25),
        ("1.5h", 5400),
        ("0.5s", 0.5),
        ("1h1m1s1ms", 3661.001),
        ("30s1h", 3630),  # order is not enforced, as in Go
        ("1m1m", 120),  # repeated units add up
    ],
)
def test_parse_duration_sums_number_unit_pairs(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    ["", "5", "s", "1d", "1w", "-1s", "+1s", "1 s", " 1s", "1s ", ".5s", "1.s", "1hm", "h1", "1S"],
)
def test_parse_duration_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "1h30m", "250ms", "1.5h", "1s" * 16])
def test_duration_type_accepts_durations(text: str) -> None:
    assert DURATION.validate_python(text) == text


@pytest.mark.parametrize("text", ["", "5", "1d", "-1s", "1 s", "1s" * 17])
def test_duration_type_refuses_malformed_or_longer_than_32(text: str) -> None:
    with pytest.raises(ValidationError):
        DURATION.validate_python(text)


def test_duration_json_schema_is_a_patterned_bounded_string() -> None:
    schema = DURATION.json_schema()
    assert schema["type"] == "string"
    assert schema["maxLength"] == 32
    assert schema["pattern"] == r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 9999), st.sampled_from(sorted(_UNITS))), min_size=1))
def test_parse_duration_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * _UNITS[unit] for n, unit in parts)
    assert math.isclose(parse_duration(text).total_seconds(), expected, abs_tol=1e-6)


@PROPERTY
@given(st.from_regex(r"^([0-9]{1,4}(\.[0-9]{1,3})?(ms|s|m|h)){1,3}$", fullmatch=True))
def test_every_string_the_duration_pattern_accepts_parses(text: str) -> None:
    assert DURATION.validate_python(text) == text  # at most 3 x 10 characters
    assert parse_duration(text) >= timedelta(0)


@pytest.mark.parametrize("text", ["99999999999999999h", "9" * 31 + "s"])
def test_parse_duration_of_an_accepted_but_huge_duration_is_a_value_error(text: str) -> None:
    assert DURATION.validate_python(text) == text
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- check_cron / Cron -----------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "0 3 * * 0",
        "* * * * *",
        "*/15 * * * *",
        "0 0 1 1 *",
        "59 23 31 12 7",
        "0 0 * * 0",
        "0 9-17 * * 1-5",
        "0 9-17 * * mon-fri",
        "0 0 * jan,jul *",
        "0 0 * DEC *",
        "0 0 * * SUN",
        "5,10,15/5 * * * *",
        "0-59/1 0-23/2 1-31/3 1-12/4 0-7/5",
        "@daily",
        "@weekly",
        "@yearly",
    ],
)
def test_check_cron_accepts_in_range_schedules(expr: str) -> None:
    assert check_cron(expr) is None


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("60 * * * *", "bad minute"),
        ("0 24 * * *", "bad hour"),
        ("0 0 0 * *", "bad day-of-month"),
        ("0 0 32 * *", "bad day-of-month"),
        ("0 0 31 4 *", "bad day-of-month"),
        ("0 0 30 2 *", "bad day-of-month"),
        ("0 0 * 0 *", "bad month"),
        ("0 0 * 13 *", "bad month"),
        ("0 0 * * 8", "bad day-of-week"),
        ("0 0-24 * * *", "bad hour"),
        ("0,61 * * * *", "bad minute"),
        ("*/0 * * * *", "bad minute"),
        ("0 1-5/0 * * *", "bad hour"),
        ("jan * * * *", "bad minute"),
        ("0 0 * mon *", "bad month"),
        ("0 0 * * jan", "bad day-of-week"),
        ("0 0 * * sunday", "bad day-of-week"),
        ("30-10 * * * *", "bad minute"),
        ("0 0 * * 5-1", "bad day-of-week"),
        ("* * * *", "wrong number of fields"),
        ("* * * * * *", "wrong number of fields"),
    ],
)
def test_check_cron_names_the_field_it_refuses(expr: str, problem: str) -> None:
    message = check_cron(expr)
    assert message is not None
    assert problem in message
    assert repr(expr) in message
    assert "minute 0-59" in message  # what a valid schedule looks like


_FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_LABELS = ["minute", "hour", "day-of-month", "month", "day-of-week"]


@PROPERTY
@given(st.tuples(*(st.integers(lo, hi) for lo, hi in _FIELD_RANGES)))
def test_check_cron_accepts_every_in_range_number(values: tuple[int, ...]) -> None:
    expr = " ".join(map(str, values))
    assert CRON.validate_python(expr) == expr
    assert check_cron(expr) is None


@PROPERTY
@given(st.integers(0, 4), st.integers(1, 500))
def test_check_cron_refuses_every_number_above_its_field(index: int, beyond: int) -> None:
    value = _FIELD_RANGES[index][1] + beyond
    fields = ["*"] * 5
    fields[index] = str(value)
    message = check_cron(" ".join(fields))
    assert message is not None
    assert f"bad {_LABELS[index]}" in message


@pytest.mark.parametrize("expr", ["0 3 * * 0", "@daily", "*/5 1,2 1-7 jan-mar mon-fri"])
def test_cron_type_accepts_five_fields_or_a_macro(expr: str) -> None:
    assert CRON.validate_python(expr) == expr


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "@reboot",
        "@every 5m",
        "0 3 * *",
        "0  3 * * 0",
        " 0 3 * * 0",
        "0 3 * * 0 2026",
        "a" * 101,
    ],
)
def test_cron_type_refuses_other_shapes(expr: str) -> None:
    with pytest.raises(ValidationError):
        CRON.validate_python(expr)


def test_cron_json_schema_carries_the_pattern() -> None:
    schema = CRON.json_schema()
    assert schema["pattern"] == CRON_PATTERN
    assert schema["maxLength"] == 100


# --- PercentOrCount --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (5, 10, True, 5),
        (0, 10, True, 0),
        (15, 10, True, 10),
        (3, 0, True, 0),
        ("10%", 10, True, 1),
        ("10%", 15, True, 2),
        ("10%", 15, False, 1),
        ("1%", 1, True, 1),
        ("1%", 1, False, 0),
        ("0%", 7, True, 0),
        ("50%", 7, True, 4),
        ("50%", 7, False, 3),
        ("100%", 7, True, 7),
        ("100%", 7, False, 7),
        ("50%", 0, True, 0),
    ],
)
def test_resolve_percent_or_count(
    value: int | str, total: int, round_up: bool, expected: int
) -> None:
    assert resolve_percent_or_count(value, total, round_up=round_up) == expected


def test_percentages_round_up_by_default() -> None:
    assert resolve_percent_or_count("10%", 15) == 2


@PROPERTY
@given(st.integers(0, 100), st.integers(0, 10_000), st.booleans())
def test_a_percentage_resolves_within_zero_and_total(percent: int, total: int, up: bool) -> None:
    count = resolve_percent_or_count(f"{percent}%", total, round_up=up)
    assert 0 <= count <= total
    exact = total * percent / 100
    assert count == (math.ceil(exact) if up else math.floor(exact))


@PROPERTY
@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 10_000), st.booleans())
def test_a_percentage_resolves_monotonically(p: int, q: int, total: int, up: bool) -> None:
    low, high = sorted((p, q))
    assert resolve_percent_or_count(f"{low}%", total, round_up=up) <= resolve_percent_or_count(
        f"{high}%", total, round_up=up
    )


@PROPERTY
@given(st.integers(0, 100), st.integers(0, 10_000))
def test_rounding_up_adds_at_most_one_node(percent: int, total: int) -> None:
    up = resolve_percent_or_count(f"{percent}%", total)
    down = resolve_percent_or_count(f"{percent}%", total, round_up=False)
    assert down <= up <= down + 1


@PROPERTY
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_a_count_resolves_to_itself_capped_at_total(count: int, total: int) -> None:
    assert resolve_percent_or_count(count, total) == min(count, total)


@pytest.mark.parametrize("value", [0, 5, "0%", "10%", "100%"])
def test_percent_or_count_keeps_the_kind_it_was_given(value: int | str) -> None:
    parsed = PERCENT_OR_COUNT.validate_python(value)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("value", [-1, "abc", "5", "150%", "10 %"])
def test_percent_or_count_refuses_what_the_crd_refuses(value: int | str) -> None:
    with pytest.raises(ValidationError):
        PERCENT_OR_COUNT.validate_python(value)


def test_percent_or_count_json_schema_is_int_or_string() -> None:
    schema = PERCENT_OR_COUNT.json_schema()
    assert schema["x-kubernetes-int-or-string"] is True
    assert schema["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert schema["minimum"] == 0
    assert schema["pattern"] == "^(100|[1-9]?[0-9])%$"


# --- names and quantities ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "a1", "1a", "vibration-edge", "a" * 63])
def test_a_reference_name_is_a_dns_label(name: str) -> None:
    assert LocalObjectReference(name=name).name == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a.b", "a" * 64])
def test_a_reference_name_refuses_what_is_not_a_dns_label(name: str) -> None:
    with pytest.raises(ValidationError):
        LocalObjectReference(name=name)


@pytest.mark.parametrize("quantity", ["2", "500m", "1.5", "256Mi", "1Gi", "10k", "1E"])
def test_resources_accept_quantities(quantity: str) -> None:
    assert ResourceRequirements.model_validate({"requests": {"cpu": quantity}}).requests == {
        "cpu": quantity
    }


@pytest.mark.parametrize("quantity", ["", "abc", "-1", "1.5.5", "1mi", "1 Gi", "1" * 33])
def test_resources_refuse_what_is_not_a_quantity(quantity: str) -> None:
    with pytest.raises(ValidationError):
        ResourceRequirements.model_validate({"limits": {"memory": quantity}})


def test_resources_refuse_keys_other_than_cpu_and_memory() -> None:
    with pytest.raises(ValidationError):
        ResourceRequirements.model_validate({"limits": {"gpu": "1"}})


# --- KubeModel ---------------------------------------------------------------------------


class _Inner(KubeModel):
    snake_case_field: int = 1
    maybe_value: str | None = None


class _Outer(KubeModel):
    display_name: str
    inner_thing: _Inner = _Inner()
    optional_text: str | None = None
    free_labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None
    many_inners: list[_Inner] = Field(default_factory=list)


def test_to_json_speaks_camel_case_and_omits_unset_optionals() -> None:
    obj = _Outer(display_name="x", many_inners=[_Inner(snake_case_field=2, maybe_value="v")])
    assert obj.to_json() == {
        "displayName": "x",
        "innerThing": {"snakeCaseField": 1},
        "freeLabels": {},
        "manyInners": [{"snakeCaseField": 2, "maybeValue": "v"}],
    }


def test_to_json_leaves_map_keys_as_they_are() -> None:
    labels = {"snake_key": "a", "node-role.kubernetes.io/edge": "true"}
    assert _Outer(display_name="x", free_labels=labels).to_json()["freeLabels"] == labels


def test_to_json_writes_times_as_rfc3339_strings() -> None:
    assert _Outer(display_name="x", created_at=T0).to_json()["createdAt"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "data",
    [{"displayName": "x", "innerThing": {"snakeCaseField": 3}}, {"display_name": "x"}],
)
def test_a_model_reads_camel_case_and_python_names(data: dict[str, Any]) -> None:
    assert _Outer.model_validate(data).display_name == "x"


def test_a_model_ignores_unknown_fields() -> None:
    assert _Outer.model_validate({"displayName": "x", "unknownField": 1}).to_json() == {
        "displayName": "x",
        "innerThing": {"snakeCaseField": 1},
        "freeLabels": {},
        "manyInners": [],
    }


def test_a_model_is_frozen() -> None:
    obj = _Outer(display_name="x")
    with pytest.raises(ValidationError):
        obj.display_name = "y"  # type: ignore[misc]


def test_to_json_round_trips() -> None:
    obj = _Outer(display_name="x", created_at=T0, free_labels={"a": "b"}, many_inners=[_Inner()])
    assert _Outer.model_validate(obj.to_json()) == obj


# --- Condition ---------------------------------------------------------------------------


def test_a_condition_reads_kubernetes_json() -> None:
    cond = Condition.model_validate(
        {
            "type": "Ready",
            "status": "True",
            "reason": "ChampionAvailable",
            "message": "Version 3 is champion.",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 4,
        }
    )
    assert (cond.type, cond.status, cond.reason, cond.observed_generation) == (
        "Ready",
        "True",
        "ChampionAvailable",
        4,
    )
    assert cond.last_transition_time == T0


def test_a_condition_writes_kubernetes_json_without_unset_generation() -> None:
    cond = Condition(type="Ready", status="False", reason="Queued", last_transition_time=T0)
    assert cond.to_json() == {
        "type": "Ready",
        "status": "False",
        "reason": "Queued",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"status": "Maybe"},
        {"status": "true"},
        {"reason": None},
        {"lastTransitionTime": "yesterday"},
        {"type": "x" * 317},
    ],
)
def test_a_condition_refuses_what_kubernetes_refuses(change: dict[str, Any]) -> None:
    data = {"type": "Ready", "status": "True", "reason": "R", "lastTransitionTime": T0}
    with pytest.raises(ValidationError):
        Condition.model_validate({**data, **change})


@pytest.mark.parametrize("field", ["type", "status", "reason", "lastTransitionTime"])
def test_a_condition_requires_its_standard_fields(field: str) -> None:
    data = {"type": "Ready", "status": "True", "reason": "R", "lastTransitionTime": T0}
    del data[field]
    with pytest.raises(ValidationError):
        Condition.model_validate(data)


def test_status_conditions_are_a_list_map_keyed_by_type() -> None:
    conditions = StatusBase.model_json_schema(by_alias=True)["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_an_empty_status_writes_only_its_conditions() -> None:
    assert StatusBase().to_json() == {"conditions": []}
