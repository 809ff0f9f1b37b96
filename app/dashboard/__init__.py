"""The dashboard: server-rendered pages (Jinja2 + htmx), live charts over SSE, load bursts.

It talks to the scorer only over HTTP at BACKEND_URL and imports neither onnxruntime nor
numpy, so it runs as its own lean process (and image) as well as beside the API.
"""
