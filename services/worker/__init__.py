"""The worker: SalesPulse's background work, in a service of its own (architecture decision 16:
API processes serve requests only, and no read writes).

Its jobs, each safe to run in any number of workers at once:

- ``dispatcher/``: delivers the outbox's notifications, at least once, with a stable id;
- contest settlement (``services.api.contests.settlement``), every 15 s: the final standings
  and the winners' ``contest_won`` notifications, stored once;
- ``pace_checks``: the ``behind_pace`` alerts, every minute;
- retention (``services.kpi.retention``), every 10 minutes: the KPI tables' pruning.

``jobs`` runs them on their schedule and keeps what ``/readyz`` says of each; ``service`` is the
worker as it runs; ``app`` its composition root (``build_worker``), used by ``salespulse worker``,
by the one-process modes and by the tests.
"""
