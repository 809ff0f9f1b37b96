"""Build gridscore's container images with podman, from a base made locally.

    python ops/images.py base     # debootstrap Debian bookworm (python3) and podman import it
    python ops/images.py build    # both images on that base, tagged localhost/gridscore-*:0.1.0
    python ops/images.py sizes    # image sizes

Registry base images cannot be pulled on these machines, so the base image is a build
argument: the Dockerfiles default to python:3.11-slim-bookworm, and here they get a bookworm
root filesystem made by debootstrap. pip inside the build uses the host's CA bundle.
"""

from __future__ import annotations

import argparse
import json
import resource
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
}
# crun fails on this machine's cgroup setup; runc works. Host networking: no CNI needed.
PODMAN = ["podman", "--runtime", "runc"]
# podman's default limits are higher than these machines let a container set (runc fails with
# "error setting rlimit"): open files at the host's hard limit, and a modest process limit
# (the host's own nproc was refused as well; 4096 is plenty for a few workers).
_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
ULIMITS = ["--ulimit", f"nofile={_NOFILE}:{_NOFILE}", "--ulimit", "nproc=4096:4096"]
MIRROR = "http://deb.debian.org/debian"


def exists(image: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", image], check=False).returncode == 0


def make_base(force: bool = False) -> None:
    if exists(BASE) and not force:
        print(f"{BASE} exists")
        return
    with tempfile.TemporaryDirectory(prefix="gridscore-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([*PODMAN, "import", "-", BASE], stdin=tar.stdout, check=True)
        tar.wait()
    print(f"built {BASE}")


def build(names: list[str]) -> None:
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
                f"BASE_IMAGE={BASE}",
                "-f",
                dockerfile,
                "-t",
                tag,
                ".",
            ],
            cwd=ROOT,
            check=True,
        )


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
    parser.add_argument("step", choices=["base", "build", "sizes", "all"])
    parser.add_argument("--force", action="store_true", help="rebuild the base image")
    args = parser.parse_args(argv)
    if args.step in ("base", "all"):
        make_base(args.force)
    if args.step in ("build", "all"):
        build(list(IMAGES))
    if args.step in ("sizes", "all"):
        for name, size in sizes().items():
            print(f"{IMAGES[name][0]}: {size / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
