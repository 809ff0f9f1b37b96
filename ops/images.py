"""Build gridscore's container images with podman, from a base made locally.

    python ops/images.py base     # debootstrap Debian bookworm (python3) and podman import it
    python ops/images.py build    # the images on that base (scorer, dashboard, Prometheus)
    python ops/images.py sizes    # image sizes
    python ops/images.py sbom     # each built image's SBOM into sbom/ (make sbom)

Registry base images cannot be pulled on these machines, so the base image is a build
argument: the Dockerfiles default to python:3.11-slim-bookworm, and here they get a bookworm
root filesystem made by debootstrap. debootstrap fetches from the Debian mirror the host's own
apt is configured with (its deb822 ``.sources`` or one-line ``.list`` files), so the build
follows the machine's package source, whatever it is; ``--mirror`` overrides it. pip inside
the build uses the host's CA bundle.

Each image built gets one last layer: its CycloneDX SBOM (ops/sbom.py, read from the image's
own files: its Python packages and Debian packages) at ``/usr/share/gridscore/sbom.cdx.json``,
and the OCI labels ``org.opencontainers.image.source``, ``.revision`` (the commit) and
``.created``; the SBOM is also written to ``sbom/<image>.cdx.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "localhost/gridscore-base:bookworm"
VERSION = "0.1.0"
IMAGES = {
    "scorer": (f"localhost/gridscore-scorer:{VERSION}", "ops/Dockerfile.scorer"),
    "dashboard": (f"localhost/gridscore-dashboard:{VERSION}", "ops/Dockerfile.dashboard"),
    "prometheus": (f"localhost/gridscore-prometheus:{VERSION}", "ops/Dockerfile.prometheus"),
    "nats": (f"localhost/gridscore-nats:{VERSION}", "ops/Dockerfile.nats"),
}
# crun fails on this machine's cgroup setup; runc works. Host networking: no CNI needed.
PODMAN = ["podman", "--runtime", "runc"]
# podman's default limits are higher than these machines let a container set (runc fails with
# "error setting rlimit"): the same modest limits as ops/compose.yaml sets for its containers.
ULIMITS = ["--ulimit", "nofile=8192:8192", "--ulimit", "nproc=4096:4096"]
SUITE = "bookworm"
SBOM_DIR = ROOT / "sbom"
SBOM_PATH = "/usr/share/gridscore/sbom.cdx.json"
# The virtual environments each image installs its Python packages into.
VENVS = {"scorer": ["/opt/gridscore"], "dashboard": ["/opt/gridscore"], "nats": ["/opt/nats"]}
APT_DIR = Path("/etc/apt")


class ImageError(RuntimeError):
    """The images cannot be built here (no usable apt source, a step failed)."""


def _deb822_paragraphs(text: str) -> list[dict[str, str]]:
    """Paragraphs of a deb822 file as {field (lower case): value}; comments dropped."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:  # a continuation line
            current[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _one_line_entries(text: str) -> list[tuple[list[str], str, list[str], list[str]]]:
    """``deb [options] uri suite component...`` lines as (types, uri, suites, components)."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [arch=amd64 signed-by=...] options
        words = line.split()
        if len(words) >= 3 and words[0] in ("deb", "deb-src"):
            entries.append(([words[0]], words[1], [words[2]], words[3:]))
    return entries


def apt_sources(apt_dir: Path = APT_DIR) -> list[tuple[list[str], str, list[str], list[str]]]:
    """Every enabled source of the host's apt, in the order apt reads its files."""
    found: list[tuple[list[str], str, list[str], list[str]]] = []
    main_list = apt_dir / "sources.list"
    parts = apt_dir / "sources.list.d"
    files = [main_list] if main_list.is_file() else []
    if parts.is_dir():
        # apt reads only these two extensions: "x.list.disabled" and the like are ignored.
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            for fields in _deb822_paragraphs(text):
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                found.extend(
                    (
                        fields.get("types", "").split(),
                        uri,
                        fields.get("suites", "").split(),
                        fields.get("components", "").split(),
                    )
                    for uri in fields.get("uris", "").split()
                )
        else:
            found.extend(_one_line_entries(text))
    return found


def debian_mirror(suite: str = SUITE, apt_dir: Path = APT_DIR) -> str:
    """The host's apt mirror for Debian ``suite`` (main), as debootstrap wants it."""
    for types, uri, suites, components in apt_sources(apt_dir):
        if (
            "deb" in types
            and suite in suites
            and "main" in components
            and uri.startswith(("http://", "https://", "file:/"))
        ):
            return uri.rstrip("/")
    raise ImageError(
        f"no apt source for Debian {suite} (type deb, component main, an http(s) or file URI) "
        f"in {apt_dir}/sources.list or {apt_dir}/sources.list.d/*.list|*.sources; "
        "configure one, or pass --mirror URL"
    )


def exists(image: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", image], check=False).returncode == 0


def make_base(tag: str = BASE, force: bool = False, mirror: str | None = None) -> None:
    """debootstrap a minimal Debian with python3 and import it as ``tag`` (unless it exists)."""
    if exists(tag) and not force:
        print(f"{tag} exists")
        return
    source = mirror or debian_mirror()
    with tempfile.TemporaryDirectory(prefix="gridscore-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                SUITE,
                str(rootfs),
                source,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        # The context manager closes tar's end of the pipe and waits for it, whatever happens.
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                [*PODMAN, "import", "-", tag],
                stdin=tar.stdout,
                stdout=subprocess.DEVNULL,
                check=False,
            )
        if tar.returncode != 0 or imported.returncode != 0:
            raise ImageError(
                f"importing the root filesystem failed (tar {tar.returncode}, "
                f"podman import {imported.returncode})"
            )
    print(f"built {tag} from {source}")


def build(names: list[str], base: str = BASE) -> None:
    for name in names:
        tag, dockerfile = IMAGES[name]
        subprocess.run(
            [
                *PODMAN,
                "build",
                "--network",
                "host",
                *ULIMITS,
                "--volume",
                "/etc/ssl/certs:/etc/ssl/certs:ro",
                "--build-arg",
                f"BASE_IMAGE={base}",
                "-f",
                dockerfile,
                "-t",
                tag,
                ".",
            ],
            cwd=ROOT,
            check=True,
        )
        finish(name)


def _git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def write_sbom(name: str) -> Path:
    """The image's SBOM, from its files (mounted read-only), into sbom/<name>.cdx.json."""
    tag = IMAGES[name][0]
    root = subprocess.run(
        [*PODMAN, "image", "mount", tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    SBOM_DIR.mkdir(exist_ok=True)
    out = SBOM_DIR / f"{name}.cdx.json"
    try:
        venvs = [arg for venv in VENVS.get(name, []) for arg in ("--venv", venv)]
        subprocess.run(
            [sys.executable, str(ROOT / "ops" / "sbom.py"), "--root", root, "--name",
             f"gridscore-{name}", "--version", VERSION, *venvs, "--out", str(out)],
            check=True,
        )  # fmt: skip
    finally:
        subprocess.run([*PODMAN, "image", "unmount", tag], capture_output=True, check=False)
    return out


def finish(name: str) -> None:
    """The last layer of a built image: its SBOM and the OCI labels."""
    tag = IMAGES[name][0]
    sbom = write_sbom(name)
    labels = {
        "org.opencontainers.image.source": _git("config", "--get", "remote.origin.url")
        or "gridscore",
        "org.opencontainers.image.revision": _git("rev-parse", "HEAD") or "unknown",
        "org.opencontainers.image.created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.title": f"gridscore-{name}",
    }
    containerfile = "\n".join(
        [
            f"FROM {tag}",
            f"COPY {sbom.name} {SBOM_PATH}",
            *(f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()),
        ]
    )
    with tempfile.TemporaryDirectory(prefix="gridscore-sbom-") as tmp:
        shutil.copy(sbom, Path(tmp) / sbom.name)
        (Path(tmp) / "Containerfile").write_text(containerfile + "\n")
        subprocess.run(
            [*PODMAN, "build", *ULIMITS, "-f", "Containerfile", "-t", tag, "."],
            cwd=tmp,
            check=True,
        )


def sboms() -> list[Path]:
    """Each built image's embedded SBOM, copied out to sbom/ (``make sbom``)."""
    written = []
    SBOM_DIR.mkdir(exist_ok=True)
    for name, (tag, _) in IMAGES.items():
        if not exists(tag):
            raise ImageError(f"{tag} is not built: python ops/images.py all")
        root = subprocess.run(
            [*PODMAN, "image", "mount", tag], capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            embedded = Path(root) / SBOM_PATH.lstrip("/")
            if not embedded.exists():
                raise ImageError(
                    f"{tag} has no {SBOM_PATH}: rebuild it (python ops/images.py build)"
                )
            out = SBOM_DIR / f"{name}.cdx.json"
            shutil.copy(embedded, out)
            written.append(out)
        finally:
            subprocess.run([*PODMAN, "image", "unmount", tag], capture_output=True, check=False)
    return written


def sizes() -> dict[str, int]:
    result = {}
    for name, (tag, _) in IMAGES.items():
        done = subprocess.run(
            [*PODMAN, "image", "inspect", tag], capture_output=True, text=True, check=True
        )
        result[name] = int(json.loads(done.stdout)[0]["Size"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python ops/images.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("step", choices=["base", "build", "sizes", "sbom", "all"])
    parser.add_argument("--force", action="store_true", help="rebuild the base image")
    parser.add_argument(
        "--mirror", help="Debian mirror for debootstrap (default: the one the host's apt uses)"
    )
    args = parser.parse_args(argv)
    try:
        if args.step in ("base", "all"):
            make_base(force=args.force, mirror=args.mirror)
    except ImageError as exc:
        print(f"ops/images.py: {exc}", file=sys.stderr)
        return 2
    if args.step in ("build", "all"):
        build(list(IMAGES))
    if args.step == "sbom":
        try:
            for path in sboms():
                print(f"wrote {path.relative_to(ROOT)}")
        except ImageError as exc:
            print(f"ops/images.py: {exc}", file=sys.stderr)
            return 2
    if args.step in ("sizes", "all"):
        for name, size in sizes().items():
            print(f"{IMAGES[name][0]}: {size / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
