"""Benchmarks: the kernel (sklearn vs ONNX graphs) and the service under load."""

import app  # noqa: F401  (first: it keeps onnxruntime's telemetry off; see app/__init__.py)
