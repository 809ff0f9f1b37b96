"""Model folders for tests that need more than one artifact."""

from __future__ import annotations

from pathlib import Path

from convert import pipeline


def publish_synthetic(folder: Path, seed: int) -> str:
    """Publish a model of the synthetic data with forest seed ``seed``; returns its digest."""
    options = pipeline.ConvertOptions(forest=pipeline.ForestParams(seed=seed))
    return pipeline.run(folder, parity_points=2_000, options=options).metadata.digest
