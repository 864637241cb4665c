"""Leaderboards: rep and team boards computed once per change of the data (``service``), their
live feeds for wallboards over Server-Sent Events (``hub``), and standard competition ranking
(``ranking``). A board has no SQL of its own: it reads the KPI feature's bucket sums, the
roster's repository and the targets."""
