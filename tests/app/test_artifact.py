"""A model whose bytes do not match its digest is never served."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.model import artifact
from app.service.factory import create_api_app
from tests.support.config import settings_from


@pytest.fixture
def copied(tmp_path: Path, artifact_path: Path) -> Path:
    target = tmp_path / artifact_path.name
    shutil.copy(artifact_path, target)
    shutil.copy(artifact.metadata_path(artifact_path), artifact.metadata_path(target))
    return target


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_verified_artifact_loads(copied: Path) -> None:
    loaded = artifact.load(copied)
    assert loaded.short_digest in copied.name
    assert loaded.model_bytes == copied.read_bytes()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_flip_a_byte, id="tampered"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:1000]), id="truncated"),
    ],
)
def test_damaged_artifact_is_refused(copied: Path, damage) -> None:  # type: ignore[no-untyped-def]
    damage(copied)
    with pytest.raises(artifact.ArtifactError, match="sha256 of the file"):
        artifact.load(copied)


def test_metadata_digest_must_match(copied: Path) -> None:
    meta_path = artifact.metadata_path(copied)
    text = meta_path.read_text()
    real = artifact.load(copied).metadata.digest
    meta_path.write_text(text.replace(real, real[:12] + "0" * 52))
    with pytest.raises(artifact.ArtifactError, match="differs from the metadata"):
        artifact.load(copied)


def test_missing_metadata_is_refused(copied: Path) -> None:
    artifact.metadata_path(copied).unlink()
    with pytest.raises(artifact.ArtifactError, match="cannot read metadata"):
        artifact.load(copied)


def test_tampered_artifact_keeps_readiness_503_and_logs_why(
    copied: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _flip_a_byte(copied)
    caplog.set_level(logging.ERROR, logger="gridscore.model")
    with TestClient(create_api_app(settings_from(copied.parent))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert "sha256" in health.json()["reason"]
        assert client.get("/live").status_code == 200
        predict = client.post(
            "/predict", json={"readings": [{"voltage": 230, "current": 10, "frequency": 50}]}
        )
        assert predict.status_code == 503
        assert predict.headers["retry-after"] == "1"
    assert any("refusing to load" in record.getMessage() for record in caplog.records)


def test_find_prefers_pinned_digest_then_newest(tmp_path: Path, copied: Path) -> None:
    assert artifact.find(copied.parent, "gridscore-iforest") == copied
    digest = artifact.load(copied).metadata.digest
    assert artifact.find(copied.parent, "gridscore-iforest", digest[:6]) == copied
    assert artifact.find(copied.parent, "gridscore-iforest", "ffffff") is None
    assert artifact.find(tmp_path / "absent", "gridscore-iforest") is None
