"""Find, verify and describe a digest-named model artifact.

An artifact is ``<name>-<sha256 prefix>.onnx`` with ``<name>-<sha256 prefix>.json`` beside it.
The convert step writes both (``convert/publish.py``: metadata first, so an ``.onnx`` file never
appears without its metadata); the server refuses any file whose bytes do not hash to the
digest in its name and metadata.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from app.contract.metadata import (
    FORMAT_VERSION,
    Metadata,
    _FormatOnly,
)

log = logging.getLogger("gridscore.model")

DIGEST_PREFIX_LEN = 12
"""Hex characters of the sha256 kept in the file name."""


class ArtifactError(RuntimeError):
    """The artifact is missing, incomplete, or fails verification."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified artifact: its bytes (what was hashed is what gets loaded) and metadata."""

    path: Path
    model_bytes: bytes
    metadata: Metadata
    kernels: dict[str, bytes]  # the large-batch graphs by name, each verified too

    @property
    def short_digest(self) -> str:
        return self.metadata.digest[:DIGEST_PREFIX_LEN]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_stem(name: str, digest: str) -> str:
    """``<name>-<first 12 hex of the sha256>``, the file name without extension."""
    return f"{name}-{digest[:DIGEST_PREFIX_LEN]}"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}-([0-9a-f]{{{DIGEST_PREFIX_LEN}}})\.onnx$")


def find(model_dir: Path, name: str, digest: str = "") -> Path | None:
    """Path of the artifact to serve: the pinned ``digest`` prefix, else the newest published."""
    if not model_dir.is_dir():
        return None
    pattern = _pattern(name)
    found = []
    for entry in os.scandir(model_dir):
        match = pattern.match(entry.name)
        if match and entry.is_file() and match.group(1).startswith(digest):
            found.append((entry.stat().st_mtime_ns, entry.name))
    if not found:
        return None
    # Publishing renames a finished file into place, so mtime orders publications.
    return model_dir / max(found)[1]


def metadata_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".json")


def kernel_path(onnx_path: Path, name: str) -> Path:
    """Where a large-batch graph of the artifact lives: ``<stem>.kernels/<name>.onnx``, in a
    folder beside it (so a listing of the models folder shows one model per artifact)."""
    return onnx_path.with_name(f"{onnx_path.stem}.kernels") / f"{name}.onnx"


def calibration_paths(onnx_path: Path) -> tuple[Path, Path]:
    """The calibration report (JSON) and its plot (SVG) beside an artifact."""
    stem = onnx_path.with_suffix("")
    return stem.with_suffix(".calibration.json"), stem.with_suffix(".calibration.svg")


def peek_metadata(model_dir: Path, name: str, digest: str = "") -> Metadata | None:
    """The metadata of the artifact that would be served, unverified; None if unreadable.

    For what must be known before the model loads (the request schema's features); loading
    still verifies everything and refuses what does not hold.
    """
    path = find(model_dir, name, digest)
    if path is None:
        return None
    try:
        return msgspec.json.decode(metadata_path(path).read_bytes(), type=Metadata)
    except (OSError, msgspec.MsgspecError):
        return None


def load(path: Path) -> Artifact:
    """Read and verify one artifact; raises ArtifactError saying exactly what is wrong."""
    match = re.match(rf"^(.+)-([0-9a-f]{{{DIGEST_PREFIX_LEN}}})\.onnx$", path.name)
    if match is None:
        raise ArtifactError(f"{path.name}: not a digest-named artifact (<name>-<sha256[:12]>.onnx)")
    try:
        model_bytes = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read model file: {exc.strerror}") from None
    meta_file = metadata_path(path)
    try:
        raw_metadata = meta_file.read_bytes()
        version = msgspec.json.decode(raw_metadata, type=_FormatOnly).format_version
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{meta_file.name}: format_version {version}, this server reads "
                f"{FORMAT_VERSION}; re-run `python -m convert` to publish a current artifact"
            )
        metadata = msgspec.json.decode(raw_metadata, type=Metadata)
    except OSError as exc:
        raise ArtifactError(f"{meta_file}: cannot read metadata: {exc.strerror}") from None
    except msgspec.MsgspecError as exc:
        raise ArtifactError(f"{meta_file}: invalid metadata: {exc}") from None
    actual = sha256_hex(model_bytes)
    if not actual.startswith(match.group(2)):
        raise ArtifactError(
            f"{path.name}: sha256 of the file is {actual[:DIGEST_PREFIX_LEN]}..., "
            f"not the {match.group(2)} in its name (tampered or truncated); refusing to load"
        )
    if actual != metadata.digest:
        raise ArtifactError(
            f"{path.name}: sha256 {actual[:DIGEST_PREFIX_LEN]}... differs from the metadata's "
            f"{metadata.digest[:DIGEST_PREFIX_LEN]}...; refusing to load"
        )
    kernels: dict[str, bytes] = {}
    for kernel in metadata.kernels.graphs:
        companion = path.parent / kernel.file
        try:
            graph = companion.read_bytes()
        except FileNotFoundError:
            # Only the large-batch graphs: the served graph alone answers the same, slower.
            log.warning(
                "large-batch graph missing; serving every batch with the served graph",
                extra={"fields": {"file": str(companion)}},
            )
            kernels.clear()
            break
        except OSError as exc:
            raise ArtifactError(f"{companion}: cannot read graph: {exc.strerror}") from None
        if sha256_hex(graph) != kernel.sha256:
            raise ArtifactError(
                f"{companion.name}: sha256 differs from the metadata's (tampered or truncated); "
                f"refusing to load"
            )
        kernels[kernel.name] = graph
    return Artifact(path=path, model_bytes=model_bytes, metadata=metadata, kernels=kernels)
