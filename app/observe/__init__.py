"""Seeing what the service does: the Prometheus metrics and their middleware (``metrics``),
drift counts of served readings against the training bins (``drift``), the Population
Stability Index (``psi``) and JSON log lines (``logs``).

Layer: below the model (which counts into these metrics); it may import ``app.config`` and
``app.contract`` only, so a client such as the dashboard can compute PSI without the model.
"""
