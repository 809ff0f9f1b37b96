"""Offline step: train the IsolationForest, compile it to ONNX, verify parity, publish.

The only package of gridscore that imports scikit-learn, skl2onnx or onnx.
Run it with ``python -m convert``.
"""

import app  # noqa: F401  (first: it keeps onnxruntime's telemetry off; see app/__init__.py)
