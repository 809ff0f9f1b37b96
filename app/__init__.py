"""gridscore's serving side: the scoring API and the dashboard.

Nothing under ``app`` imports scikit-learn, skl2onnx or the ``convert`` package: the serving
image carries onnxruntime and numpy only.
"""

import os

# onnxruntime's published builds send usage telemetry on Linux too since 1.29: importing it
# starts an uploader thread that resolves a collector's name every few seconds. A scorer on
# a utility's network has no business reaching out, so it is off unless an operator sets
# ORT_DISABLE_TELEMETRY=0. onnxruntime reads the variable once, when it is first imported;
# every entry point (app, convert, bench) imports this package before it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
