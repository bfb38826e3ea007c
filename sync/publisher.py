"""The uplink's bookkeeping, free of paho: outbox rows to wire messages, outbox cursors, rows in flight.

``to_message`` wraps a row's body in the envelope and validates it; ``Lane`` walks unsent rows in id order (the
backlog lane stops at the row that was last when the connection came up, the live lane starts after it);
``Flight`` tracks each row from ``publish()`` until the store has marked it sent, so no row is read twice
meanwhile.
"""

import heapq
import json
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edge import const
from edge.store import outbox
from edge.store.outbox import OutboxRow
from sync.topics import Topics
from sync.wire import AGGREGATE_MODELS, WIRE_VERSION, CommandResult, WireModel


def utc(ts: float) -> datetime:
    """A POSIX timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def to_message(row: OutboxRow, store_id: str, historical: bool, sent_at: float) -> WireModel:
    """The wire message of one outbox row; ``ValueError`` when the row does not make a valid message (a bug)."""
    envelope: dict[str, object] = {"v": WIRE_VERSION, "store": store_id, "seq": row.id, "idem_key": row.idem_key,
                                   "sent_at": sent_at}
    if row.kind == const.CMD_RESULT:
        return CommandResult.model_validate_json(_with_envelope(row.body, envelope))
    model = AGGREGATE_MODELS.get(row.kind)
    if model is None:
        raise ValueError(f"no wire model for outbox kind {row.kind!r}")
    if row.window_start is None or row.window_end is None:
        raise ValueError("aggregate row without a window")
    envelope.update(kind=row.kind, window_start=row.window_start, window_end=row.window_end, historical=historical)
    return model.model_validate_json(_with_envelope(row.body, envelope))


def _with_envelope(body: str, envelope: dict[str, object]) -> str:
    # The body is already JSON: appending the envelope's members to it and validating the text is about twice as
    # fast as json.loads + model_validate (this is the backlog drain's hot path). JSON parsing keeps the last of
    # repeated keys, so the envelope wins over a body that repeats one. Times are POSIX seconds, which the
    # models read as UTC.
    head = body.rstrip()
    if not head.endswith("}"):
        raise ValueError("outbox body is not a JSON object")
    inner = head[:-1].rstrip()
    separator = "" if inner.endswith("{") else ","
    return inner + separator + json.dumps(envelope, separators=(",", ":"))[1:]


def topic_for(topics: Topics, kind: str) -> str:
    """The topic a row of this kind is published on."""
    return topics.cmd_result if kind == const.CMD_RESULT else topics.agg(kind)


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest outbox id ever given out (0 for an empty outbox)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (const.TABLE_OUTBOX,)).fetchone()
    return int(row[0]) if row else 0


@dataclass(slots=True)
class Lane:
    """A cursor over unsent outbox rows in id order; ``upper`` bounds the backlog lane to rows ≤ that id."""

    name: str
    after: int = 0
    upper: int | None = None
    done: bool = False
    buffer: deque[OutboxRow] = field(default_factory=deque)

    def reset(self, after: int, upper: int | None) -> None:
        """Start again after ``after`` (a new connection)."""
        self.after, self.upper, self.done = after, upper, False
        self.buffer.clear()

    def covers(self, row_id: int) -> bool:
        """Whether a row belongs to this lane."""
        return self.upper is None or row_id <= self.upper

    def rewind(self, row_id: int) -> None:
        """Read a row handed out earlier again (it was rejected or lost before its PUBACK)."""
        self.after = min(self.after, row_id - 1)
        self.done = False
        self.buffer.clear()

    def next(self, conn: sqlite3.Connection, skip: Callable[[int], bool], page: int) -> OutboxRow | None:
        """The next unsent row not skipped, or None when the lane has nothing to send now."""
        while True:
            while self.buffer:
                row = self.buffer.popleft()
                if not skip(row.id):
                    return row
            if self.done or not self._refill(conn, page):
                return None

    def _refill(self, conn: sqlite3.Connection, page: int) -> bool:
        rows = outbox.pending(conn, self.after, page)
        if self.upper is not None:
            in_lane = [row for row in rows if row.id <= self.upper]
            self.done = len(in_lane) < page
            rows = in_lane
        if rows:
            self.after = rows[-1].id
        self.buffer.extend(rows)
        return bool(rows)


@dataclass(slots=True)
class Flight:
    """Rows between ``publish()`` and their ``mark_sent``: awaiting PUBACK, acknowledged, or held for a retry.

    paho reuses message ids once a message completes, so ``awaiting`` maps only the ids currently outstanding.
    """

    awaiting: dict[int, int] = field(default_factory=dict)
    acked: list[int] = field(default_factory=list)
    held: list[tuple[float, int]] = field(default_factory=list)
    _busy: set[int] = field(default_factory=set)

    def sent(self, mid: int, row_id: int) -> None:
        """A row was handed to paho under message id ``mid``."""
        self.awaiting[mid] = row_id
        self._busy.add(row_id)

    def ack(self, mid: int, ok: bool) -> int | None:
        """A PUBACK for ``mid``; returns its row (None for an id we did not send). A failed ack frees the row."""
        row_id = self.awaiting.pop(mid, None)
        if row_id is not None:
            if ok:
                self.acked.append(row_id)
            else:
                self._busy.discard(row_id)
        return row_id

    def marked(self, ids: list[int]) -> None:
        """The store has marked these acknowledged rows sent."""
        done = set(ids)
        self.acked = [row_id for row_id in self.acked if row_id not in done]
        self._busy -= done

    def hold(self, row_id: int, due: float) -> None:
        """Send a row again at ``due`` (monotonic seconds), not before."""
        heapq.heappush(self.held, (due, row_id))
        self._busy.add(row_id)

    def due(self, now: float) -> list[int]:
        """Held rows whose time has come; they are free to be read again."""
        ready: list[int] = []
        while self.held and self.held[0][0] <= now:
            _, row_id = heapq.heappop(self.held)
            self._busy.discard(row_id)
            ready.append(row_id)
        return ready

    def busy(self, row_id: int) -> bool:
        """Whether a row must not be read again now."""
        return row_id in self._busy
