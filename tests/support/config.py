"""Settings for in-process tests, written as the environment variables an operator would set."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings


def settings_from(model_dir: Path | None = None, **env: object) -> Settings:
    """``Settings.from_env`` of ``env`` (values turned into strings), with MODEL_DIR if given.

    Only the given variables count: the test process's own environment is not read. The
    garbage collector is left as it is (GC_FREEZE=0) unless a test asks: the test process
    builds many apps and is not a server.
    """
    variables = {"GC_FREEZE": "0", **{name: str(value) for name, value in env.items()}}
    if model_dir is not None:
        variables["MODEL_DIR"] = str(model_dir)
    return Settings.from_env(variables)
