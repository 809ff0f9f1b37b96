"""The dashboard: server-rendered pages (Jinja2 + htmx), live charts over SSE, load bursts.

It talks to the scorer only over HTTP at BACKEND_URL and imports neither the model, nor
onnxruntime, nor numpy (import-linter contracts check it), so it runs as its own lean process
(and image) as well as beside the API. Layer: a sibling of the transports; it may import
``app.serving.parts``, ``app.runtime``, ``app.observe.psi``, ``app.config`` and
``app.contract``.
"""
