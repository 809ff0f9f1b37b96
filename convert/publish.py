"""Publish an artifact: side files, metadata, then model, each written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from app.contract.metadata import Metadata
from app.model.artifact import artifact_stem, calibration_paths, kernel_path, metadata_path


def publish(
    model_dir: Path,
    model_bytes: bytes,
    metadata: Metadata,
    calibration_report: bytes | None = None,
    calibration_plot: bytes | None = None,
    kernels: dict[str, bytes] | None = None,
) -> Path:
    """Write the large-batch graphs, the calibration report and plot, the metadata, then the
    model, each atomically (temp file, fsync, rename); returns the model path.

    The server looks for ``.onnx`` files only, so when one appears everything beside it is
    complete. Racing publishers of the same bytes write the same names, and a reader never sees
    a half-written file: each rename swaps in a complete one.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    stem = artifact_stem(metadata.name, metadata.digest)
    onnx_path = model_dir / f"{stem}.onnx"
    report_path, plot_path = calibration_paths(onnx_path)
    for kernel_name, graph in (kernels or {}).items():
        target = kernel_path(onnx_path, kernel_name)
        target.parent.mkdir(exist_ok=True)
        _write_atomic(target, graph)
    if calibration_report is not None:
        _write_atomic(report_path, calibration_report)
    if calibration_plot is not None:
        _write_atomic(plot_path, calibration_plot)
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
