"""The HQ receiver's SQLite: every message once per (store, seq), per-store state, seq gaps, lag and counts.

Tables (named migrations, WAL):

    messages   one row per (store, seq): kind, idem_key, window, first_received_at, duplicates, payload_json
    stores     one row per store: online/session/version from ``…/state``, last seen, seq counters, lag inputs
    invalid    one row per topic that sent undecodable or invalid payloads: count and the last error

Writes are plain SQL on a connection owned by one thread (the receiver's worker) inside ``transaction()``;
reads are pure functions taking a (possibly read-only) connection and returning frozen dataclasses.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge.errors import StoreError
from edge.store.db import connect, connect_readonly

migrations = Migrations("store-edge-hq")

KIND_CMD_RESULT = "cmd_result"


@migrations(name="0001_hq")
def _hq(db: Database) -> None:
    statements = [
        """CREATE TABLE messages (
            store TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            window_start REAL,
            window_end REAL,
            historical INTEGER NOT NULL,
            sent_at REAL NOT NULL,
            first_received_at REAL NOT NULL,
            duplicates INTEGER NOT NULL DEFAULT 0,
            payload_json TEXT NOT NULL,
            PRIMARY KEY (store, seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX idx_messages_kind ON messages (store, kind, window_start)",
        "CREATE INDEX idx_messages_idem ON messages (idem_key)",
        """CREATE TABLE stores (
            store TEXT PRIMARY KEY,
            online INTEGER,
            session INTEGER,
            version TEXT,
            state_changed_at REAL,
            last_seen REAL,
            last_seq INTEGER,
            max_seq INTEGER,
            received INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            conflicts INTEGER NOT NULL DEFAULT 0,
            stale_states INTEGER NOT NULL DEFAULT 0,
            last_window_end REAL,
            last_sent_at REAL,
            last_transit_s REAL
        )""",
        """CREATE TABLE invalid (
            topic TEXT PRIMARY KEY,
            store TEXT,
            count INTEGER NOT NULL,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            last_error TEXT NOT NULL
        )""",
    ]
    for statement in statements:
        db.execute(statement)


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating) the HQ database for writing; WAL, explicit transactions."""
    conn = connect(path)
    try:
        migrations.apply(Database(conn))
    except sqlite3.Error as err:
        conn.close()
        raise StoreError(f"cannot migrate HQ database {path}: {err}") from err
    return conn


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open the HQ database read-only (for ``edge hq status`` while a receiver runs)."""
    return connect_readonly(path, migrations)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- writes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A validated aggregate or command result, ready to store. Times are epoch seconds."""

    store: str
    seq: int
    kind: str
    idem_key: str
    window_start: float | None
    window_end: float | None
    historical: bool
    sent_at: float
    received_at: float
    payload_json: str


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """What ``insert_message`` did: ``new`` first copy, else a duplicate; ``conflict`` when the stored copy of
    (store, seq) has another idem_key (the store's seq went backwards, e.g. its database was replaced)."""

    new: bool
    conflict: bool = False


def insert_message(conn: sqlite3.Connection, msg: StoredMessage) -> InsertOutcome:
    """Insert a message once per (store, seq); a later copy only bumps ``duplicates``. Updates the store row."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO messages (store, seq, kind, idem_key, window_start, window_end, historical, sent_at,"
        " first_received_at, payload_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (msg.store, msg.seq, msg.kind, msg.idem_key, msg.window_start, msg.window_end, int(msg.historical),
         msg.sent_at, msg.received_at, msg.payload_json),
    )
    _ensure_store(conn, msg.store)
    if cursor.rowcount == 1:
        conn.execute(
            "UPDATE stores SET received = received + 1, last_seen = max(coalesce(last_seen, 0), ?), last_seq = ?,"
            " max_seq = max(coalesce(max_seq, 0), ?),"
            " last_window_end = CASE WHEN ? IS NULL THEN last_window_end"
            "   ELSE max(coalesce(last_window_end, ?), ?) END,"
            " last_sent_at = max(coalesce(last_sent_at, 0), ?), last_transit_s = ? WHERE store = ?",
            (msg.received_at, msg.seq, msg.seq, msg.window_end, msg.window_end, msg.window_end, msg.sent_at,
             max(0.0, msg.received_at - msg.sent_at), msg.store),
        )
        return InsertOutcome(new=True)
    conn.execute("UPDATE messages SET duplicates = duplicates + 1 WHERE store = ? AND seq = ?", (msg.store, msg.seq))
    row = conn.execute("SELECT idem_key FROM messages WHERE store = ? AND seq = ?", (msg.store, msg.seq)).fetchone()
    conflict = row is not None and row[0] != msg.idem_key
    conn.execute(
        "UPDATE stores SET duplicates = duplicates + 1, conflicts = conflicts + ?,"
        " last_seen = max(coalesce(last_seen, 0), ?) WHERE store = ?",
        (int(conflict), msg.received_at, msg.store),
    )
    return InsertOutcome(new=False, conflict=conflict)


@dataclass(frozen=True, slots=True)
class StoreState:
    """A validated ``…/state`` message. ``ts`` and ``received_at`` are epoch seconds."""

    store: str
    online: bool
    session: int
    version: str
    ts: float
    received_at: float


@dataclass(frozen=True, slots=True)
class StateOutcome:
    """What ``apply_state`` did: ``stale`` (older session, ignored), or whether ``online`` changed and how."""

    stale: bool
    changed: bool
    online: bool | None
    previous_online: bool | None
    previous_session: int | None


def apply_state(conn: sqlite3.Connection, state: StoreState) -> StateOutcome:
    """Apply a state message unless its session is older than the newest seen (a late Last Will is stale)."""
    _ensure_store(conn, state.store)
    row = conn.execute("SELECT online, session FROM stores WHERE store = ?", (state.store,)).fetchone()
    prev_online = None if row[0] is None else bool(row[0])
    prev_session: int | None = row[1]
    if prev_session is not None and state.session < prev_session:
        conn.execute("UPDATE stores SET stale_states = stale_states + 1 WHERE store = ?", (state.store,))
        return StateOutcome(stale=True, changed=False, online=prev_online, previous_online=prev_online,
                            previous_session=prev_session)
    changed = prev_online != state.online or prev_session != state.session
    conn.execute(
        "UPDATE stores SET online = ?, session = ?, version = ?,"
        " state_changed_at = CASE WHEN ? THEN ? ELSE state_changed_at END,"
        " last_seen = max(coalesce(last_seen, 0), ?) WHERE store = ?",
        (int(state.online), state.session, state.version, int(changed), state.ts, state.received_at, state.store),
    )
    return StateOutcome(stale=False, changed=changed, online=state.online, previous_online=prev_online,
                        previous_session=prev_session)


def record_invalid(conn: sqlite3.Connection, topic: str, store: str | None, error: str, at: float) -> None:
    """Count an invalid payload on a topic and keep the last error."""
    conn.execute(
        "INSERT INTO invalid (topic, store, count, first_at, last_at, last_error) VALUES (?, ?, 1, ?, ?, ?)"
        " ON CONFLICT (topic) DO UPDATE SET count = count + 1, last_at = excluded.last_at,"
        " last_error = excluded.last_error",
        (topic, store, at, at, error[:500]),
    )


def _ensure_store(conn: sqlite3.Connection, store: str) -> None:
    conn.execute("INSERT OR IGNORE INTO stores (store) VALUES (?)", (store,))


# -- reads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeqRange:
    """Missing seqs ``first``..``last`` inclusive; ``since`` is when HQ first received a later seq (epoch s)."""

    first: int
    last: int
    since: float

    @property
    def count(self) -> int:
        """How many seqs the range holds."""
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class StoreGaps:
    """Seqs missing between the lowest and highest seq received from one store (over every kind)."""

    store: str
    min_seq: int
    max_seq: int
    missing: int
    ranges: tuple[SeqRange, ...]
    overdue: int


def seq_gaps(conn: sqlite3.Connection, store: str | None = None, max_ranges: int = 1000,
             overdue_before: float | None = None) -> dict[str, StoreGaps]:
    """Per store, the seqs missing between its lowest and highest received seq, as ranges (first ``max_ranges``).

    ``overdue`` counts missing seqs known missing since before ``overdue_before``: a later seq arrived then and
    they still have not, so they are not merely in flight or waiting for backlog replay.
    """
    where, args = ("WHERE store = ?", (store,)) if store is not None else ("", ())
    bounds = conn.execute(
        f"SELECT store, min(seq), max(seq), count(*) FROM messages {where} GROUP BY store ORDER BY store", args
    ).fetchall()
    ranges: dict[str, list[SeqRange]] = {}
    overdue: dict[str, int] = {}
    # A gap is known from the moment a later seq arrived: the smallest first_received_at of any later seq.
    for row in conn.execute(
        "SELECT store, seq + 1, next_seq - 1, later_received_at FROM ("
        "  SELECT store, seq, lead(seq) OVER w AS next_seq,"
        "    min(first_received_at) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later_received_at"
        f"  FROM messages {where} WINDOW w AS (PARTITION BY store ORDER BY seq)"
        ") WHERE next_seq > seq + 1 ORDER BY store, seq",
        args,
    ):
        gap = SeqRange(row[1], row[2], row[3])
        found = ranges.setdefault(row[0], [])
        if len(found) < max_ranges:
            found.append(gap)
        if overdue_before is not None and gap.since < overdue_before:
            overdue[row[0]] = overdue.get(row[0], 0) + gap.count
    return {
        name: StoreGaps(store=name, min_seq=low, max_seq=high, missing=high - low + 1 - count,
                        ranges=tuple(ranges.get(name, ())), overdue=overdue.get(name, 0))
        for name, low, high, count in bounds
    }


@dataclass(frozen=True, slots=True)
class KindCount:
    """Messages of one kind from one store."""

    store: str
    kind: str
    messages: int
    duplicates: int
    historical: int


def kind_counts(conn: sqlite3.Connection, store: str | None = None) -> list[KindCount]:
    """Per store and kind: distinct messages, duplicate copies received, and messages replayed as historical."""
    where, args = ("WHERE store = ?", (store,)) if store is not None else ("", ())
    rows = conn.execute(
        f"SELECT store, kind, count(*), sum(duplicates), sum(historical) FROM messages {where}"
        " GROUP BY store, kind ORDER BY store, kind",
        args,
    ).fetchall()
    return [KindCount(store=r[0], kind=r[1], messages=r[2], duplicates=r[3], historical=r[4]) for r in rows]


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """One store as HQ sees it. Ages and lags are seconds relative to ``now``; None when unknown."""

    store: str
    online: bool | None
    session: int | None
    version: str | None
    state_changed_at: float | None
    last_seen: float | None
    last_seen_age_s: float | None
    received: int
    duplicates: int
    conflicts: int
    stale_states: int
    last_seq: int | None
    max_seq: int | None
    missing: int
    missing_overdue: int
    missing_ranges: tuple[SeqRange, ...]
    lag_s: float | None
    last_sent_at: float | None
    last_transit_s: float | None
    invalid: int
    kinds: dict[str, int]


def store_statuses(conn: sqlite3.Connection, now: float, store: str | None = None, max_ranges: int = 10,
                   gap_grace_s: float = 900.0) -> list[StoreStatus]:
    """Every store (or one): state, counters, seq gaps, lag (``now`` − newest window end received) and counts.

    ``missing_overdue`` counts missing seqs known missing for longer than ``gap_grace_s``.
    """
    where, args = ("WHERE store = ?", (store,)) if store is not None else ("", ())
    gaps = seq_gaps(conn, store, max_ranges=max_ranges, overdue_before=now - gap_grace_s)
    kinds: dict[str, dict[str, int]] = {}
    for count in kind_counts(conn, store):
        kinds.setdefault(count.store, {})[count.kind] = count.messages
    invalid = dict(conn.execute(f"SELECT store, sum(count) FROM invalid {where} GROUP BY store", args).fetchall())
    result: list[StoreStatus] = []
    for row in conn.execute(
        "SELECT store, online, session, version, state_changed_at, last_seen, received, duplicates, conflicts,"
        f" stale_states, last_seq, max_seq, last_window_end, last_sent_at, last_transit_s FROM stores {where}"
        " ORDER BY store",
        args,
    ):
        name = row[0]
        gap = gaps.get(name)
        result.append(StoreStatus(
            store=name, online=None if row[1] is None else bool(row[1]), session=row[2], version=row[3],
            state_changed_at=row[4], last_seen=row[5], last_seen_age_s=None if row[5] is None else now - row[5],
            received=row[6], duplicates=row[7], conflicts=row[8], stale_states=row[9], last_seq=row[10],
            max_seq=row[11], missing=gap.missing if gap else 0,
            missing_overdue=gap.overdue if gap else 0, missing_ranges=gap.ranges if gap else (),
            lag_s=None if row[12] is None else now - row[12], last_sent_at=row[13], last_transit_s=row[14],
            invalid=int(invalid.get(name, 0)), kinds=kinds.get(name, {}),
        ))
    return result


@dataclass(frozen=True, slots=True)
class InvalidTopic:
    """A topic that sent invalid payloads."""

    topic: str
    store: str | None
    count: int
    last_at: float
    last_error: str


def invalid_topics(conn: sqlite3.Connection, store: str | None = None) -> list[InvalidTopic]:
    """Topics that sent invalid payloads, most recent first."""
    where, args = ("WHERE store = ?", (store,)) if store is not None else ("", ())
    rows = conn.execute(
        f"SELECT topic, store, count, last_at, last_error FROM invalid {where} ORDER BY last_at DESC", args
    ).fetchall()
    return [InvalidTopic(topic=r[0], store=r[1], count=r[2], last_at=r[3], last_error=r[4]) for r in rows]

