"""``GET /v1/connections``: each provider, whether it is connected, what to paste into it, and
what its deliveries became."""
