"""The Open Inference Protocol (KServe v2) over HTTP: the infer wire format, JSON or binary
tensors in and outputs as asked for (``infer``), and the v2 health, metadata and infer routes
with their OpenAPI (``routes``).

A transport: it runs on the same scoring endpoint and data plane as ``/predict``
(``app.serving``) and imports none of its siblings (``app.http``, ``app.stream``,
``app.dashboard``).
"""
