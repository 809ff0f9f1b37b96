"""The drift panel's arithmetic: windows of /metrics snapshots, per pod, restarts, new models."""

from __future__ import annotations

import pytest

from app.contract.api import FeatureInfo, ModelResponse
from app.contract.metadata import CalibrationSummary, DriftBins
from app.dashboard.charts import psi_bars
from app.dashboard.drift import DriftWatch, parse_counts
from app.observe.psi import psi

SHARES = [0.25, 0.25, 0.25, 0.25]


def _model(digest: str = "a" * 64) -> ModelResponse:
    features = [
        FeatureInfo(
            name=name,
            unit="",
            mean=0.0,
            std=1.0,
            min=-3.0,
            max=3.0,
            envelope=[None, None],
            drift=DriftBins(edges=[-1.0, 0.0, 1.0], shares=SHARES),
        )
        for name in ("voltage", "current")
    ]
    calibration = CalibrationSummary("contamination", "5 %", 0.0, 0, 0, *([None] * 9))
    return ModelResponse("m", digest, 0.0, features, "trained", calibration, 1, "synthetic")


def _metrics(counts: dict[str, list[float]], model: str = "a" * 12) -> str:
    lines = ["# TYPE drift_readings_total counter"]
    for feature, per_bin in counts.items():
        for index, count in enumerate(per_bin):
            lines.append(
                f'drift_readings_total{{feature="{feature}",bin="{index}",model="{model}"}} {count}'
            )
    # Another model's counts (an earlier one, still exported) are not this model's.
    lines.append('drift_readings_total{feature="voltage",bin="0",model="bbbbbbbbbbbb"} 1e6')
    return "\n".join(lines) + "\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _psi(watch: DriftWatch, model: ModelResponse, window: int) -> dict[str, float | None]:
    return {f.name: f.psi for f in watch.view(model, window).features}


def test_parse_counts_takes_only_the_served_models_bins() -> None:
    text = _metrics({"voltage": [1, 2, 3, 4], "current": [5, 5, 5, 5]})
    counts = parse_counts(text, "a" * 12, {"voltage": 4, "current": 4})
    assert counts == {"voltage": [1, 2, 3, 4], "current": [5, 5, 5, 5]}


def test_psi_over_the_window_is_the_difference_of_snapshots() -> None:
    clock, model = Clock(), _model()
    watch = DriftWatch(clock)
    nominal = {"voltage": [100.0] * 4, "current": [100.0] * 4}
    watch.observe("pod-a", model, _metrics(nominal))
    assert _psi(watch, model, 60) == {"voltage": None, "current": None}  # one snapshot only
    clock.now += 30
    # 30 s later: 400 more readings each, voltage crowded into the top bin.
    watch.observe("pod-a", model, _metrics({"voltage": [120, 120, 120, 440], "current": [200] * 4}))
    got = _psi(watch, model, 60)
    assert got["current"] == pytest.approx(0.0)
    assert got["voltage"] == pytest.approx(psi([20, 20, 20, 340], SHARES))
    view = watch.view(model, 60)
    assert view.readings == 400
    assert view.covered_s == pytest.approx(30)
    # 60 s later still: the 30 s window holds only the last interval, which was nominal.
    clock.now += 30
    watch.observe("pod-a", model, _metrics({"voltage": [220, 220, 220, 540], "current": [300] * 4}))
    assert _psi(watch, model, 30)["voltage"] == pytest.approx(0.0)
    assert _psi(watch, model, 60)["voltage"] == pytest.approx(psi([120, 120, 120, 440], SHARES))


def test_pods_are_differenced_apart_and_summed() -> None:
    clock, model = Clock(), _model()
    watch = DriftWatch(clock)
    # Two pods behind one Service, with very different totals: differencing one pod's
    # counters against the other's would be nonsense (and negative).
    watch.observe("pod-a", model, _metrics({"voltage": [1000] * 4, "current": [1000] * 4}))
    watch.observe("pod-b", model, _metrics({"voltage": [10] * 4, "current": [10] * 4}))
    clock.now += 10
    watch.observe(
        "pod-a", model, _metrics({"voltage": [1100, 1000, 1000, 1000], "current": [1000] * 4})
    )
    watch.observe("pod-b", model, _metrics({"voltage": [10, 10, 10, 110], "current": [10] * 4}))
    view = watch.view(model, 60)
    voltage = next(f for f in view.features if f.name == "voltage")
    assert voltage.readings == 200
    assert voltage.psi == pytest.approx(psi([100, 0, 0, 100], SHARES))
    current = next(f for f in view.features if f.name == "current")
    assert current.psi is None
    assert current.level == "no data"


def test_a_restarted_pod_and_a_new_model_start_again() -> None:
    clock, model = Clock(), _model()
    watch = DriftWatch(clock)
    watch.observe("pod-a", model, _metrics({"voltage": [500] * 4, "current": [500] * 4}))
    clock.now += 5
    # The pod restarted: its counters began again, lower than before.
    watch.observe("pod-a", model, _metrics({"voltage": [1, 1, 1, 1], "current": [1] * 4}))
    assert _psi(watch, model, 60)["voltage"] is None
    clock.now += 5
    watch.observe("pod-a", model, _metrics({"voltage": [11, 1, 1, 1], "current": [11] * 4}))
    assert _psi(watch, model, 60)["voltage"] == pytest.approx(psi([10, 0, 0, 0], SHARES))
    # Another model: other bins, so the history is dropped.
    other = _model("c" * 64)
    watch.observe("pod-a", other, _metrics({"voltage": [3] * 4}, model="c" * 12))
    assert watch.view(other, 60).model == "c" * 12
    assert _psi(watch, other, 60)["voltage"] is None


def test_psi_bars_mark_each_feature_with_its_value_and_level() -> None:
    svg = psi_bars([("voltage", 0.31, "significant"), ("current", None, "no data")], (0.2,))
    assert 'data-feature="voltage" data-psi="0.310000" data-level="significant"' in svg
    assert 'data-feature="current" data-psi="" data-level="no data"' in svg
    assert "style=" not in svg  # the CSP allows no inline style


def test_an_empty_window_says_so_once_instead_of_no_data_over_every_bar() -> None:
    svg = psi_bars([("voltage", None, "no data"), ("current", None, "no data")], (0.2,))
    assert svg.count("no readings scored in this window yet") == 1
    assert "<svg" not in svg
    mixed = psi_bars([("voltage", 0.05, "stable"), ("current", None, "no data")], (0.2,))
    assert mixed.count("no data") == 2  # the bar's label and its data-level, not twice each
    assert "no data no data" not in mixed
