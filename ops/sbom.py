"""A CycloneDX 1.5 software bill of materials for one image, from its root filesystem.

    python3 ops/sbom.py --root /path/to/rootfs --name gridscore-scorer --version 0.1.0 \
        --venv /opt/gridscore --out sbom/scorer.cdx.json

ops/images.py runs it on each image it builds (the image mounted read-only with ``podman image
mount``), writes the SBOM into the image (``/usr/share/gridscore/sbom.cdx.json``, with the OCI
labels, in one last layer) and beside it in ``sbom/``; ``make sbom`` writes that folder. It
lists every Python distribution installed in the given virtual environments (name, version,
``pkg:pypi`` purl) and every Debian package dpkg has installed (``pkg:deb/debian`` purl with its
architecture). Reading the files from outside means the image needs no Python of its own for
it (Prometheus's has none) and nothing is added to build it. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

DPKG_STATUS = "var/lib/dpkg/status"


def _pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python_components(root: Path, venvs: list[str]) -> list[dict[str, Any]]:
    components: dict[str, dict[str, Any]] = {}
    for venv in venvs:
        for site in sorted((root / venv.lstrip("/")).glob("lib/python3*/site-packages")):
            for dist in importlib.metadata.distributions(path=[str(site)]):
                name = _pypi_name(dist.metadata["Name"])
                purl = f"pkg:pypi/{name}@{dist.version}"
                components[purl] = {
                    "type": "library",
                    "bom-ref": purl,
                    "name": name,
                    "version": dist.version,
                    "purl": purl,
                }
    return [components[key] for key in sorted(components)]


def debian_components(root: Path) -> list[dict[str, Any]]:
    """The installed packages of dpkg's status file (paragraphs of "Field: value" lines)."""
    status = root / DPKG_STATUS
    if not status.exists():
        return []
    components = []
    for paragraph in status.read_text(errors="replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" not in fields or not fields.get("Status", "").endswith(" installed"):
            continue
        arch = fields.get("Architecture", "all")
        version = fields.get("Version", "")
        purl = f"pkg:deb/debian/{fields['Package']}@{version}?arch={arch}"
        components.append(
            {
                "type": "library",
                "bom-ref": purl,
                "name": fields["Package"],
                "version": version,
                "purl": purl,
            }
        )
    return sorted(components, key=lambda c: c["bom-ref"])


def bom(root: Path, name: str, version: str, venvs: list[str]) -> dict[str, Any]:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "tools": [{"vendor": "gridscore", "name": "ops/sbom.py"}],
            "component": {
                "type": "container",
                "bom-ref": f"{name}@{version}",
                "name": name,
                "version": version,
            },
        },
        "components": python_components(root, venvs) + debian_components(root),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 ops/sbom.py", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("/"), help="the image's root")
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--venv", action="append", default=[], help="a venv inside the root")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    document = bom(args.root, args.name, args.version, args.venv)
    if not document["components"]:
        print("ops/sbom.py: no Python or Debian package found", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
