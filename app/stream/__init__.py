"""The stream transport: readings consumed from NATS JetStream (and MQTT through nats-server),
scored by the same data plane as ``/predict``, verdicts, alarms per sensor and dead letters
published back (docs/stream.md).

- ``worker``: the consume-score-judge-publish-acknowledge cycle;
- ``broker``: the connection, streams, pull loops and pipelined publisher;
- ``leases``: which worker holds which partition; ``alarms``: k-of-n, clear, flood;
- ``messages``, ``subjects``: bodies and subjects in; ``health``: ``/health``.

A transport: it shares the data plane, the model and the metrics (``app.serving``,
``app.model``, ``app.observe``) and imports none of its siblings (``app.http``, ``app.v2``,
``app.dashboard``).
"""
