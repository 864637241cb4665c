"""The alerts API's tests (``tests/unit/api/alerts/test_alerts_api.py``) on the embedded SQLite
and on a real PostgreSQL: the same saves, refusals, filters, CSV and live stream."""

from __future__ import annotations

from tests.unit.api.alerts import test_alerts_api as unit
from tests.unit.api.alerts.test_alerts_api import app, server

__all__ = ["app", "server"]  # fixtures of the unit tests, over this module's ``db``


test_alert_crud = unit.test_an_alert_is_saved_read_listed_and_deleted_each_change_counted
test_unknown_channels = unit.test_unknown_channels_are_named_and_listed
test_contest_won = unit.test_a_contest_won_alert_needs_an_existing_contest
test_read_key = unit.test_a_read_key_cannot_change_alerts
test_listed = unit.test_notifications_are_listed_newest_first_with_their_deliveries
test_filtered = unit.test_notifications_are_filtered_by_alert_and_delivery_status_and_limited
test_csv = unit.test_notifications_export_as_csv_one_row_each
test_stream = unit.test_a_notification_raised_while_connected_arrives_once_with_its_id
test_late_commit = unit.test_a_notification_committed_late_with_an_earlier_stamp_is_still_sent
test_replay = unit.test_last_event_id_replays_only_the_notifications_raised_after_it
