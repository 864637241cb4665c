"""The activity behind a number: the events whose bookings make a rep's, a team's or an unknown
identity's value of a metric in a window (``GET /v1/{reps|teams}/{id}/activity``)."""
