"""The processes: uvicorn's options and one worker or several (``server``), the supervisor of
SO_REUSEPORT workers (``supervisor``), the HTTP protocol class with TCP_NODELAY, the fair
start order and the drain (``http_protocol``), SIGTERM handling (``signals``), listeners that
stop without dropping queued connections (``listeners``) and garbage-collection tuning
(``gctune``).

Nothing here knows the model. Layer: beside the data plane, below the transports; it may
import ``app.observe``, ``app.config`` and ``app.contract``.
"""
