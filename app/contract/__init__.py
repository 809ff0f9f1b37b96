"""What the parts of gridscore agree on, as data: the HTTP wire format of ``/predict``,
``/health`` and ``/model`` (``api``), the Open Inference Protocol's JSON objects (``v2``), the
artifact's metadata (``metadata``), the error every layer raises (``errors``) and the synthetic
supply point the default model is trained on (``nominal``).

msgspec Structs and constants, shared by the server, its clients (the dashboard, the load
generator) and ``convert``. Layer: the lowest, beside ``app.config``; it imports nothing else
of ``app``.
"""
