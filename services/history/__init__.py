"""Past activity in: ``salespulse import FILE`` (``command``), and the loader any input of past
events goes through (``loader``: a file, ``files``; CSV rows, ``csv_events``), resumable from
its checkpoint (``checkpoints``)."""
