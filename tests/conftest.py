"""Fixtures layered settings -> holder -> app -> client, on one artifact converted per session."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.config import Settings
from app.service.factory import create_api_app
from tests.support.config import settings_from

EXAMPLE_BATCH = {
    "readings": [
        {"voltage": 230.1, "current": 9.8, "frequency": 50.02},
        {"voltage": 271.0, "current": 28.5, "frequency": 50.7, "timestamp": "2026-01-01T00:00:00Z"},
    ]
}


@pytest.fixture(scope="session")
def trained_model():  # type: ignore[no-untyped-def]
    """The sklearn forest exactly as the convert step trains it."""
    from convert import data, train

    return train.fit(data.training_data())


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one artifact published by the real convert pipeline."""
    from convert import pipeline

    directory = tmp_path_factory.mktemp("models")
    pipeline.run(directory, parity_points=5_000)
    return directory


@pytest.fixture(scope="session")
def feeder_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a model trained on a recorded-looking export: five features (three
    phase voltages, a current, a power factor), extra columns, a few labelled anomalies."""
    from convert import pipeline
    from convert.__main__ import build_parser, options_from
    from tests.support import datasets

    folder = tmp_path_factory.mktemp("feeder")
    data = datasets.write(
        datasets.table(20_000, seed=12, anomaly_share=0.01), folder / "feeder.csv"
    )
    args = build_parser().parse_args(["--data", str(data), "--units", datasets.UNITS])
    pipeline.run(folder / "models", parity_points=2_000, options=options_from(args))
    return folder / "models"


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A model folder with two servable artifacts: A (published first) and B (the newest)."""
    import time

    from tests.support.models import publish_synthetic

    folder = tmp_path_factory.mktemp("two-models")
    a = publish_synthetic(folder, seed=1)
    time.sleep(0.01)  # B is the newest by mtime
    b = publish_synthetic(folder, seed=2)
    return folder, a, b


@pytest.fixture(scope="session")
def artifact_path(model_dir: Path) -> Path:
    (path,) = model_dir.glob("*.onnx")
    return path


@pytest.fixture
def settings(model_dir: Path) -> Settings:
    return settings_from(model_dir)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_api_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """Seeded randomness; the seed is printed so a failure can be replayed (GRIDSCORE_SEED)."""
    seed = int(os.environ.get("GRIDSCORE_SEED") or random.SystemRandom().randrange(2**31))
    print(f"{request.node.nodeid}: GRIDSCORE_SEED={seed}")
    return np.random.default_rng(seed)
