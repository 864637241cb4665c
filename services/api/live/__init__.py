"""What the leaderboards and the contests both read, so neither feature reads the other:

- ``hub``: live boards for Server-Sent Events (one feed per board, one poller for all);
- ``stamped``: the stamp a result is current for (``stamp_of``: a data version and a minute)
  and the single-flight cache keyed by it;
- ``contenders``: who competes, every team or every rep in its team at a time, per roster
  version;
- ``ranking``: standard competition ranking (1, 2, 2, 4)."""
