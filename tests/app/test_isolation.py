"""The serving process carries onnxruntime and numpy, never the training stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pathlib import Path
from litestar.testing import TestClient
from app.factory import create_api_app
from app.settings import Settings
import app.cli, app.server

with TestClient(create_api_app(Settings.from_env({'MODEL_DIR': sys.argv[1]}))) as client:
    response = client.post(
        "/predict", json={"readings": [{"voltage": 230, "current": 10, "frequency": 50}]}
    )
    assert response.status_code == 200, response.text
training = {"sklearn", "skl2onnx", "onnx", "convert"}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in training)
print("LOADED", loaded)
"""


def test_scoring_app_never_imports_sklearn_or_skl2onnx(model_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_dir)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
