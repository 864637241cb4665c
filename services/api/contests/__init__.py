"""Contests: time boxes with a score, defined by admins (``definition``), ranked live from the
exact buckets (``standings``, pure scoring in ``scoring``) and settled once, by the worker
(``settlement``). ``repository`` holds their SQL, ``routes`` the HTTP edge."""
