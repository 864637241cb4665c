"""The activity behind a number, and a deal's history, from the activity record.

The drill-down reads the subject's rows booked at instants of the window's tiling (the buckets
the KPI value sums, ``KpiQueries.tiling``), so a count's or a sum's contributions add up to the
value exactly. An event's rows (its first booking, a later report, a correction) are netted per
rep and team: an item is what the event adds now; one that nets to nothing is left out.

Steps of a page:
1. where the detail starts (``detail_from``: the record's start, the retention);
2. the rows, batch by batch below the cursor, grouped per event (an event's rows are adjacent
   in the scan order, so a page never splits one);
3. the items of each event, until ``limit`` events gave some; the cursor is its last row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import orjson

from services.api.activity.queries import ActivityQueries, Position, Row, Whose, merged
from services.api.activity.schemas import ActivityItem, ActivityOut, CountsIn, DealChange, DealOut
from services.api.common.pages import decode_cursor, encode_cursor
from services.api.kpis.queries import KpiQueries
from services.api.kpis.schemas import MetricValue
from shared.activity_mask import bits_of
from shared.catalogue import Linear, Metric
from shared.problems import NotFound, Problem, Unprocessable
from shared.windows import Window

TOP: Position = (2**62, b"\xff" * 17, 2**62)  # above every row: the first page
BATCH = 500  # rows read at a time
NOTES = {
    "expired": {
        "en": "Activity older than the retention (ACTIVITY_RETENTION_DAYS) is no longer kept: "
        "the items explain the value from detail_from on.",
        "fr": "L'activité plus ancienne que la durée de conservation (ACTIVITY_RETENTION_DAYS) "
        "n'est plus conservée : les éléments expliquent la valeur à partir de detail_from.",
    },
    "unrecorded": {
        "en": "Activity booked before the activity record existed cannot be listed: the items "
        "explain the value from detail_from on.",
        "fr": "L'activité comptée avant l'existence du journal d'activité ne peut pas être "
        "listée : les éléments expliquent la valeur à partir de detail_from.",
    },
}


def applied(form: Linear | None, counters: dict[str, int]) -> int:
    return sum(k * counters.get(c, 0) for c, k in form or ())


@dataclass(frozen=True, slots=True)
class Asked:
    """What a drill-down is about: whose, which metric, which window, which page."""

    whose: Whose
    metric: Metric
    window: Window
    limit: int
    cursor: str | None


class Drilldown:
    def __init__(
        self, queries: ActivityQueries, kpis: KpiQueries, retention_days: int, now: datetime
    ) -> None:
        self._queries, self._kpis = queries, kpis
        self._retention_days, self._now = retention_days, now

    async def detail_from(self) -> tuple[int, str | None]:
        """From when every booking is listed, and why not before (expired | unrecorded)."""
        expired = int(self._now.timestamp()) - self._retention_days * 86400
        unrecorded = await self._queries.unrecorded_before()
        if unrecorded is not None and unrecorded > expired:
            return unrecorded, "unrecorded"
        return expired, "expired"

    async def page(self, asked: Asked, value: MetricValue, as_of: datetime) -> ActivityOut:
        detail_from, why = await self.detail_from()
        window = asked.window
        if window.end_ts <= detail_from:
            raise Problem(
                "the activity behind this window is no longer kept (detail_from "
                f"{_iso(detail_from)}); its value still is, at the KPI routes",
                status=410,
                slug="detail-expired",
                errors=[{"field": "query.from", "message": "before detail_from"}],
                detail_from=_iso(detail_from),
            )
        items, cursor = await self._items(asked)
        complete = window.start_ts >= detail_from
        metric = asked.metric
        sums = await self._parts(asked) if metric.kind == "ratio" else (None, None)
        return ActivityOut(
            scope=asked.whose.scope,
            id=asked.whose.id,
            metric=metric.name,
            kind=metric.kind,
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=as_of,
            value=value,
            numerator=sums[0],
            denominator=sums[1],
            scale=metric.scale if metric.kind == "ratio" else None,
            complete=complete,
            incomplete_reason=None if complete else why,
            detail_from=datetime.fromtimestamp(detail_from, UTC),
            note=None if complete or why is None else NOTES[why],
            items=items,
            next_cursor=cursor,
        )

    async def _parts(self, asked: Asked) -> tuple[int | None, int | None]:
        """A ratio's numerator and denominator over the window, from the buckets."""
        metric, whose = asked.metric, asked.whose
        sums = await self._kpis.sums(whose.scope, asked.window, metric.needs, [whose.id])
        own = sums.get(whose.id, {})
        denominator = None if metric.denominator is None else applied(metric.denominator, own)
        return applied(metric.numerator, own), denominator

    async def _items(self, asked: Asked) -> tuple[list[ActivityItem], str | None]:
        spans = merged((r.lo, r.hi) for r in self._kpis.tiling(asked.window))
        below = self._position(asked.cursor)
        items: list[ActivityItem] = []
        events = 0
        async for rows in self._events(asked, spans, below):
            found = self._of_event(asked.metric, rows)
            if found:
                items += found
                events += 1
            if events >= asked.limit:
                last = rows[-1]
                return await self._marked(items), _cursor((last.time, last.event_key, last.id))
        return await self._marked(items), None

    async def _events(self, asked: Asked, spans: list[tuple[int, int]], below: Position) -> Any:
        """Each event's rows, in scan order, batch after batch."""
        bits = bits_of(asked.metric.needs)
        pending: list[Row] = []
        while True:
            batch = await self._queries.rows(asked.whose, spans, bits, below, BATCH)
            for row in batch:
                if pending and row.event_key != pending[0].event_key:
                    yield pending
                    pending = []
                pending.append(row)
            if len(batch) < BATCH:
                break
            last = batch[-1]
            below = (last.time, last.event_key, last.id)
        if pending:
            yield pending

    def _of_event(self, metric: Metric, rows: list[Row]) -> list[ActivityItem]:
        """What one event adds, per rep and team it is booked to; nothing where it nets out."""
        nets: dict[tuple[str, str, str | None], dict[str, int]] = {}
        for row in rows:
            net = nets.setdefault((row.scope, row.subject, row.team_id), {})
            for name, value in orjson.loads(row.counters).items():
                net[name] = net.get(name, 0) + value
        return [
            item
            for (scope, subject, team), net in nets.items()
            if (item := _item(metric, rows, scope, subject, team, net)) is not None
        ]

    async def _marked(self, items: list[ActivityItem]) -> list[ActivityItem]:
        """The items with the corrections in force on their events."""
        keys = {i.event_key: i for i in items}
        in_force = await self._queries.in_force([bytes.fromhex(k) for k in keys])
        for item in items:
            item.corrected = in_force.get(bytes.fromhex(item.event_key), [])
        return items

    def _position(self, cursor: str | None) -> Position:
        key = decode_cursor(cursor, (int, str, int))
        if key is None:
            return TOP
        try:
            return key[0], bytes.fromhex(key[1]), key[2]
        except ValueError:
            raise Unprocessable(
                "cursor: not a cursor of this list; use next_cursor as it was given",
                errors=[{"field": "query.cursor", "message": "not a cursor of this list"}],
            ) from None


def _cursor(position: Position) -> str:
    return encode_cursor([position[0], position[1].hex(), position[2]])


def _item(
    metric: Metric,
    rows: list[Row],
    scope: str,
    subject: str,
    team: str | None,
    net: dict[str, int],
) -> ActivityItem | None:
    numerator, denominator = applied(metric.numerator, net), applied(metric.denominator, net)
    if not numerator and not denominator:
        return None
    first = rows[0]
    ratio = metric.kind == "ratio"
    revenue = net.get("revenue_cents", 0)
    return ActivityItem(
        event_id=first.event_id,
        event_key=first.event_key.hex(),
        type=first.type,
        time=datetime.fromtimestamp(first.time, UTC),
        booked_at=datetime.fromtimestamp(max(r.at for r in rows), UTC),
        rep_id=subject if scope == "rep" else None,
        team_id=team,
        contribution=None if ratio else metric.value(net),
        numerator=numerator if ratio else None,
        denominator=denominator if ratio and metric.denominator is not None else None,
        counts_in=_counts_in(numerator, denominator) if ratio else None,
        source=first.source,
        provider=first.actor.partition(":")[0] if first.actor else None,
        actor=first.actor,
        call_id=first.call_id,
        deal_id=first.deal_id,
        amount=round(revenue / 100, 2) if revenue else None,
    )


def _counts_in(numerator: int, denominator: int) -> CountsIn:
    if numerator and denominator:
        return "both"
    return "numerator" if numerator else "denominator"


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


# -- a deal's history -----------------------------------------------------------------------

DEAL_COUNTERS = ("deals_won", "deals_lost", "revenue_cents", "margin_cents", "new_customers")


async def deal_history(queries: ActivityQueries, deal_id: str) -> DealOut:
    rows = await queries.of_deal(deal_id)
    states = await queries.deal_states(deal_id)
    if not rows and not states:
        raise NotFound(f"no deal {deal_id!r} in the KPI state or the activity record")
    changes = list(_changes(rows))
    in_force = await queries.in_force([bytes.fromhex(c.event_key) for c in changes])
    for change in changes:
        change.corrected = in_force.get(bytes.fromhex(change.event_key), [])
    current = _current(states[0]) if states else _current_from(changes)
    return DealOut(deal_id=deal_id, **current, changes=changes)


def _changes(rows: list[Row]) -> Iterator[DealChange]:
    """One change per event, rep and team: what it booked on the deal, signed."""
    for _, group in groupby(rows, key=lambda r: (r.event_key, r.correction)):
        grouped = list(group)
        nets: dict[tuple[str, str, str | None], dict[str, int]] = {}
        for row in grouped:
            net = nets.setdefault((row.scope, row.subject, row.team_id), {})
            for name, value in orjson.loads(row.counters).items():
                net[name] = net.get(name, 0) + value
        first = grouped[0]
        for (scope, subject, team), net in nets.items():
            booked = {c: net[c] for c in DEAL_COUNTERS if net.get(c)}
            yield DealChange(
                event_id=first.event_id,
                event_key=first.event_key.hex(),
                type=first.type,
                time=datetime.fromtimestamp(first.time, UTC),
                booked_at=datetime.fromtimestamp(max(r.at for r in grouped), UTC),
                correction=first.correction or None,
                rep_id=subject if scope == "rep" else None,
                identity=subject if scope == "unassigned" else None,
                team_id=team,
                what=_what(net),
                deals_won=net.get("deals_won", 0),
                deals_lost=net.get("deals_lost", 0),
                revenue=round(net.get("revenue_cents", 0) / 100, 2),
                booked=booked,
            )


def _what(net: dict[str, int]) -> str:
    won, lost, revenue = net.get("deals_won", 0), net.get("deals_lost", 0), net.get("revenue_cents")
    if won > 0:
        return "won"
    if lost > 0:
        return "lost"
    if won < 0 or lost < 0:
        return "reopened"
    return "amount_edit" if revenue else "update"


def _current(state_json: str) -> dict[str, Any]:
    """The deal now, from the KPI service's state: its latest fields and status."""
    state = orjson.loads(state_json)
    fields = {name: entry[0] for name, entry in state.get("fields", {}).items()}
    statuses = sorted(state.get("statuses", []))
    actor = fields.get("actor")
    return {
        "status": statuses[-1][2] if statuses else None,
        "amount": fields.get("amount"),
        "currency": fields.get("currency"),
        "stage": fields.get("stage"),
        "account_id": fields.get("account_id"),
        "owner": f"{actor['provider']}:{actor['external_id']}" if isinstance(actor, dict) else None,
        "state_from": "kpi_state",
    }


def _current_from(changes: list[DealChange]) -> dict[str, Any]:
    """The deal now as far as the record tells (its state was pruned): won or lost as its
    bookings net, its booked revenue."""
    won = sum(c.deals_won for c in changes)
    lost = sum(c.deals_lost for c in changes)
    revenue = round(sum(c.revenue for c in changes), 2)
    return {
        "status": "won" if won > 0 else "lost" if lost > 0 else None,
        "amount": f"{revenue:.2f}" if won > 0 else None,
        "currency": None,
        "stage": None,
        "account_id": None,
        "owner": None,
        "state_from": "activity_record",
    }
