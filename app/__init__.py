"""gridscore's serving side: the scoring API, its transports and the dashboard.

The folders are the architecture (docs/architecture.md draws it): ``config`` and ``contract``
at the bottom, then ``observe``, ``model``, the data plane ``serving`` beside ``runtime``, the
transports ``http``, ``v2`` and ``dashboard`` side by side, and ``service`` (the assembled
apps) and ``harness`` (the benchmarks' entry) on top; ``cli`` launches it. Import-linter
contracts in pyproject.toml hold each layer to the ones below it. Nothing under ``app``
imports scikit-learn, skl2onnx or the ``convert`` package: the serving image carries
onnxruntime and numpy only.
"""

import os

# onnxruntime's published builds send usage telemetry on Linux too since 1.29: importing it
# starts an uploader thread that resolves a collector's name every few seconds. A scorer on
# a utility's network has no business reaching out, so it is off unless an operator sets
# ORT_DISABLE_TELEMETRY=0. onnxruntime reads the variable once, when it is first imported;
# every entry point (app, convert, bench) imports this package before it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
