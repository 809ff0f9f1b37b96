"""The served apps, assembled: the scoring API from its transports on one data plane
(``api``), the dashboard, or both in one process, behind a front door that sends scoring
paths straight to their endpoint (``factory``; uvicorn's entry points live there).

Layer: the top with ``app.harness``; it may import every other part of ``app``.
"""
