"""Readings outside the operating envelope are flagged; the forest's score is untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient

from app.config import Settings
from app.config.envelope import EnvelopeError, env_overrides
from app.model.envelope import resolve
from app.service.factory import create_api_app
from tests.support.config import settings_from
from tests.support.examples import EXAMPLE_BATCH, NOMINAL
from tests.support.metrics_text import value


def _predict(
    settings: Settings, readings: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    with TestClient(create_api_app(settings)) as client:
        response = client.post("/predict", json={"readings": readings})
        assert response.status_code == 200, response.text
        return response.json(), client.get("/health").json(), client.get("/metrics").text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"voltage": 150.0}, ["voltage_low"]),
        ({"voltage": 300.0}, ["voltage_high"]),
        ({"current": 60.0}, ["current_high"]),
        ({"current": 0.0}, ["current_low"]),
        ({"frequency": 48.0}, ["frequency_low"]),
        ({"frequency": 52.0}, ["frequency_high"]),
    ],
)
def test_single_feature_excursions_are_flagged_with_feature_and_direction(
    settings: Settings, change: dict[str, float], expected: list[str]
) -> None:
    body, _, metrics = _predict(settings, [{**NOMINAL, **change}, NOMINAL])
    flagged, nominal = body["predictions"]
    assert flagged["anomaly"] is True
    assert flagged["out_of_range"] == expected
    assert nominal["anomaly"] is False
    assert "out_of_range" not in nominal  # omitted when empty: old clients see the old shape
    feature, direction = expected[0].rsplit("_", 1)
    assert value(metrics, "envelope_breaches_total", feature=feature, direction=direction) == 1
    assert value(metrics, "envelope_breaches_total") == 1


def test_design_example_still_gives_one_anomaly(settings: Settings) -> None:
    body, _, _ = _predict(settings, EXAMPLE_BATCH["readings"])
    assert body["anomalies"] == 1
    first, second = body["predictions"]
    assert set(first) == {"anomaly", "score"}
    assert second["out_of_range"] == ["voltage_high", "current_high", "frequency_high"]


def test_nominal_anomaly_rate_moves_at_most_a_tenth_of_a_point(
    settings: Settings, rng: np.random.Generator
) -> None:
    from convert.data import normal_points

    rows = normal_points(10_000, rng).tolist()
    readings = [{"voltage": v, "current": c, "frequency": f} for v, c, f in rows]
    guarded, _, _ = _predict(settings, readings)
    forest_only, health, _ = _predict(
        settings_from(settings.model.dir, ENVELOPE_PRESET="off"), readings
    )
    assert health["envelope"]["source"] == "off"
    rate_guarded = guarded["anomalies"] / 10_000
    rate_forest = forest_only["anomalies"] / 10_000
    assert abs(rate_guarded - rate_forest) <= 0.001
    # The forest's score is exactly the same with and without the guard.
    assert [p["score"] for p in guarded["predictions"]] == [
        p["score"] for p in forest_only["predictions"]
    ]


def test_custom_bound_changes_the_verdict_and_health_says_custom(settings: Settings) -> None:
    reading = {**NOMINAL, "voltage": 236.0}  # inside the trained envelope, normal to the forest
    trained, health, _ = _predict(settings, [reading])
    assert health["envelope"]["source"] == "trained"
    assert trained["predictions"][0]["anomaly"] is False
    custom_settings = Settings.from_env(
        {"MODEL_DIR": str(settings.model.dir), "ENVELOPE_VOLTAGE_MAX": "235"}
    )
    custom, health, _ = _predict(custom_settings, [reading])
    assert health["envelope"]["source"] == "custom"
    assert health["envelope"]["bounds"]["voltage"][1] == 235.0
    flagged = custom["predictions"][0]
    assert {k: flagged[k] for k in ("anomaly", "score", "out_of_range")} == {
        "anomaly": True,
        "score": trained["predictions"][0]["score"],
        "out_of_range": ["voltage_high"],
    }
    assert set(flagged["attribution"]) == {"voltage", "current", "frequency"}


def test_en50160_preset_widens_voltage_and_keeps_trained_current(settings: Settings) -> None:
    reading = {**NOMINAL, "voltage": 250.0}  # outside the trained envelope, inside +/-10 %
    trained, trained_health, _ = _predict(settings, [reading])
    assert trained["predictions"][0]["out_of_range"] == ["voltage_high"]
    preset, health, _ = _predict(
        settings_from(settings.model.dir, ENVELOPE_PRESET="en50160"), [reading]
    )
    assert health["envelope"]["source"] == "preset:en50160"
    assert health["envelope"]["bounds"]["voltage"] == [207.0, 253.0]
    assert health["envelope"]["bounds"]["frequency"] == [49.5, 50.5]
    assert (
        health["envelope"]["bounds"]["current"] == trained_health["envelope"]["bounds"]["current"]
    )
    assert "out_of_range" not in preset["predictions"][0]


def test_envelope_file_overrides_bounds(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "envelope.json"
    path.write_text(json.dumps({"frequency": {"min": 49.99, "max": 50.01}}))
    body, health, _ = _predict(
        settings_from(settings.model.dir, ENVELOPE_FILE=path),
        [{**NOMINAL, "frequency": 50.02}],
    )
    assert health["envelope"]["source"] == "custom"
    assert body["predictions"][0]["out_of_range"] == ["frequency_high"]


def test_bad_envelope_config_keeps_the_model_unavailable(settings: Settings) -> None:
    bad = Settings.from_env({"MODEL_DIR": str(settings.model.dir), "ENVELOPE_PHASE_MAX": "3"})
    with TestClient(create_api_app(bad)) as client:
        health = client.get("/health")
    assert health.status_code == 503
    assert "unknown feature 'phase'" in health.json()["reason"]


def test_resolve_rejects_inverted_and_unknown_bounds() -> None:
    features = ("voltage", "current")
    trained = {"voltage": [200.0, 260.0], "current": [0.0, 20.0]}
    with pytest.raises(EnvelopeError, match="must be below"):
        resolve(features, trained, "trained", (("voltage", "min", 300.0),))
    with pytest.raises(EnvelopeError, match="ENVELOPE_PRESET"):
        resolve(features, trained, "eu", ())
    env = resolve(features, trained, "trained", (("current", "max", 16.0),))
    assert env.bounds() == {"voltage": [200.0, 260.0], "current": [0.0, 16.0]}
    # Columns: voltage_low, current_low, voltage_high, current_high; named feature by feature.
    name = env.breach_namer()
    assert name(np.array([False, False, False, True])) == ["current_high"]
    assert name(np.array([True, True, False, False])) == ["voltage_low", "current_low"]
    assert name(np.array([True, False, True, True])) == [
        "voltage_low",
        "voltage_high",
        "current_high",
    ]


def test_env_overrides_parse_names_and_reject_garbage() -> None:
    assert env_overrides({"ENVELOPE_VOLTAGE_MIN": "207", "PATH": "/bin"}) == (
        ("voltage", "min", 207.0),
    )
    with pytest.raises(EnvelopeError, match="must be a number"):
        env_overrides({"ENVELOPE_CURRENT_MAX": "lots"})
