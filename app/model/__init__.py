"""The served model and its lifecycle: finding and verifying an artifact (``artifact``),
loading it into an onnxruntime session pinned to one thread (``scorer``), holding it and its
readiness (``holder``), the operating envelope in force (``envelope``), what it says about a
batch (``verdicts``), swaps without downtime and rollback (``swap``) and shadow scoring of a
candidate (``shadow``).

The only package that imports onnxruntime. Layer: below the data plane and the transports;
it may import ``app.observe``, ``app.config`` and ``app.contract``.
"""
