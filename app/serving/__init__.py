"""The data plane every transport shares, and the HTTP scoring machinery both HTTP transports
(``/predict`` and the Open Inference Protocol) run on.

- ``dataplane``: a float32 matrix in, verdicts out, with the metrics, drift and shadow every
  transport must count the same way (the stream worker uses it as well);
- ``endpoint``: one ASGI app per scoring route (admission, body, a wire format's decode and
  encode, errors), with ``admission`` (API key, in-flight bound, time budget);
- ``predictions``: readings to a matrix, verdicts to ``/predict``'s per-reading answers;
- ``errors``, ``openapi``, ``parts``, ``probes``: error bodies of the Litestar routes, the
  OpenAPI document, what a side of the service adds to an app, ``/live`` and ``/metrics``.

Layer: below the transports, above the model; it may import ``app.model``, ``app.observe``,
``app.config`` and ``app.contract``.
"""
