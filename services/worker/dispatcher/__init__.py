"""The dispatcher: delivers the outbox's notifications at least once (architecture decision 12).

- ``backoff``: when to try again and when to give up (pure);
- ``repository``: the SQL of claiming due deliveries and recording what came of them;
- ``metrics``: delivered, failed, retried, delivery latency, pending;
- ``dispatcher``: the loop (``Dispatcher(db, settings).run(stop)``), a job of the worker.
"""
