"""Notifications leaving the system: channels, their messages, the SSRF guard, one delivery.

- ``guard``: where a channel may point (``https``, public addresses only, unless
  ``ALLOW_PRIVATE_CHANNELS``), checked when a channel is saved and again when connecting.
- ``messages``: what each kind of channel is sent (pure), and the ``whsec_`` secrets.
- ``outcome``: what an answer (or its absence) means for a retrying dispatcher (pure).
- ``send``: one delivery of one notification to one channel, signed, classified.

Used by the API (saving channels) and by the worker's dispatcher (delivering).
"""
