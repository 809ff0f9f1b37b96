"""Publish an artifact: metadata, then model, each written atomically under its digest name."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from app.artifact import Metadata, artifact_stem, metadata_path


def publish(model_dir: Path, model_bytes: bytes, metadata: Metadata) -> Path:
    """Write metadata then model atomically (temp file, fsync, rename); returns the model path.

    Racing publishers of the same bytes write the same names, and a reader never sees a
    half-written file: each rename swaps in a complete one.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    stem = artifact_stem(metadata.name, metadata.digest)
    onnx_path = model_dir / f"{stem}.onnx"
    _write_atomic(metadata_path(onnx_path), msgspec.json.format(msgspec.json.encode(metadata)))
    _write_atomic(onnx_path, model_bytes)
    return onnx_path


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
