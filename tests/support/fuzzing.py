"""One schemathesis run against a live server's OpenAPI document (the fuzz tests' harness)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SEED = "20261127"


def schemathesis_run(url: str, workdir: Path, *options: str) -> tuple[int, int, str]:
    """Run schemathesis with every check, a fixed seed and ``options`` over ``url``'s
    ``/schema/openapi.json``; (generated, passed, output). Fails the test on a nonzero exit."""
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{url}/schema/openapi.json",
            "--checks",
            "all",
            "--seed",
            SEED,
            "--generation-database",
            "none",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=workdir,  # schemathesis keeps a .schemathesis cache in its working folder
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counted is not None, output[-2000:]
    return int(counted.group(1)), int(counted.group(2)), output
