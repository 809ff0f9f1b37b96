"""Benchmarks: the kernel (sklearn vs ONNX graphs) and the service under load."""
