"""The HTTP transport of gridscore's own API: ``POST /predict``'s JSON wire format
(``predict``, decoded by ``decoding``), the routes ``/health`` and ``/model`` (``routes``) and
the admin routes that swap, roll back and shadow models (``admin``).

A transport: it shares the data plane and the scoring endpoint (``app.serving``) with its
siblings and imports none of them (``app.v2``, ``app.stream``, ``app.dashboard``).
"""
