"""The KPI service's pure core: canonical events in, bucket deltas out. No I/O, no clock.

- ``engine``: the dispatch of events to counters and states, per subject and bucket;
- ``state``, ``calls``, ``deals``, ``accounts``: facts that change, kept as state;
- ``roster``: the snapshot of who owns which identity, and which team each rep was in;
- ``recredit``: moving unassigned activity to the rep it turns out to be.

The dependency rule: these modules import each other and ``shared``'s pure modules, never the
service's I/O modules (``flush``, ``offsets``, ``retention``, ``bulk``, ``consumer``, ``alerts``)
nor a database or bus driver; ``tests/unit/kpi/test_kpi_domain_imports.py`` checks it.
"""
