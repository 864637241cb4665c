"""What every feature of the API shares: API keys (``auth``), the request's connection and the
edge's transaction (``database``), the parameters every request resolves once (``params``),
conditional reads (``freshness``) and exports in CSV and xlsx (``exports``, ``spreadsheets``)."""
