"""Corrections: reassign one event to a rep, or exclude it (``/v1/corrections``)."""
