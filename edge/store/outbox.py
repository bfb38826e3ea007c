"""The transactional outbox: messages for HQ written in the same transaction as the aggregates they carry.

The outbox id is the message ``seq``: AUTOINCREMENT never reuses an id, so it increases monotonically across
restarts. A row is marked sent only after the broker's PUBACK. Unsent rows are bounded by count, bytes and age;
past a bound, rows of the ``detail`` shed class are shed oldest first (counted per kind, logged once per episode);
rows of the ``keep`` class (counts HQ reports on) are never shed.
"""

import functools
import json
import logging
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from edge import const

logger = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class OutboxRow:
    """One message waiting for (or past) its PUBACK.

    ``body`` is a JSON object with the kind-specific fields of the wire message (``rows`` for aggregates,
    ``gateway`` and ``rows`` for health, ``id``/``name``/``status``/``reason``/``result``/``ts`` for command
    results); the publisher adds the envelope (``v``, ``store``, ``seq`` = ``id``, ``idem_key``, window, ``historical``,
    ``sent_at``) and validates the whole against ``sync.wire``.
    """

    id: int
    kind: str
    idem_key: str
    window_start: float | None
    window_end: float | None
    body: str
    created_at: float


@dataclass(slots=True, frozen=True)
class OutboxStats:
    """The backlog as ``edge outbox`` and ``edge status`` show it."""

    backlog_rows: int
    backlog_bytes: int
    oldest_created_at: float | None
    last_sent_at: float | None
    last_seq: int
    shed: dict[str, int]
    dead_letters: int = 0


def enqueue(conn: sqlite3.Connection, *, kind: str, shed_class: str, idem_key: str, body: str, now: float,
            window_start: float | None = None, window_end: float | None = None) -> int:
    """Add one message; returns its seq. Call inside the transaction that wrote what it carries."""
    cursor = conn.execute(
        f"""INSERT INTO {const.TABLE_OUTBOX}
            (kind, shed_class, idem_key, window_start, window_end, body, bytes, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (kind, shed_class, idem_key, window_start, window_end, body, len(body.encode("utf-8")), now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


JSON_SUFFIX = "__json"


def _decoded(row: dict[str, object]) -> dict[str, object]:
    """A selected row, with columns aliased ``name__json`` (JSON text in the table) turned into ``name`` values."""
    return {(k.removesuffix(JSON_SUFFIX) if k.endswith(JSON_SUFFIX) else k):
            (json.loads(v) if k.endswith(JSON_SUFFIX) and isinstance(v, str) else v) for k, v in row.items()}


def _enqueue_window(conn: sqlite3.Connection, *, store_id: str, kind: str, select_sql: str, window: float,
                    batch_s: int, shed_class: str, now: float) -> int:
    conn.row_factory = sqlite3.Row
    try:
        rows = [_decoded(dict(r)) for r in conn.execute(select_sql, {"start": window, "end": window + batch_s})]
    finally:
        conn.row_factory = None
    body = json.dumps({"rows": rows}, separators=(",", ":"))
    return enqueue(conn, kind=kind, shed_class=shed_class, idem_key=f"{store_id}:{kind}:{int(window)}:{batch_s}",
                   body=body, now=now, window_start=window, window_end=window + batch_s)


def enqueue_windows(conn: sqlite3.Connection, *, store_id: str, kind: str, select_sql: str, closed_until: float,
                    batch_s: int, shed_class: str, now: float, revised: Sequence[float] = ()) -> int:
    """Queue one message per closed batch window of an aggregate table; returns messages queued.

    ``select_sql`` selects the rows of one batch window given ``:start`` and ``:end``; a column aliased
    ``name__json`` holds JSON text and travels as the value ``name``. Every window from the
    first aggregate on gets a message, empty or not, so HQ can tell "nothing happened" from "not arrived".
    ``revised`` lists rollup windows recomputed for late rows: a batch window already sent that contains one is
    queued again, with the same ``idem_key`` and a higher seq, so HQ's upsert by key keeps the corrected one.
    Resumable: a watermark per kind moves in the same transaction.
    """
    key = f"outbox:{kind}"
    row = conn.execute(f"SELECT watermark FROM {const.TABLE_ROLLUP_STATE} WHERE kind = ?", (key,)).fetchone()
    end = float(math.floor(closed_until / batch_s) * batch_s)
    queue_window = functools.partial(_enqueue_window, conn, store_id=store_id, kind=kind, select_sql=select_sql,
                                     batch_s=batch_s, shed_class=shed_class, now=now)
    queued = 0
    if row is not None:
        start = float(row[0])
        for batch in sorted({float(math.floor(w / batch_s) * batch_s) for w in revised if w < start}):
            queue_window(window=batch)
            queued += 1
    else:
        first = conn.execute(f"SELECT min(window_start) FROM ({select_sql})", {"start": 0, "end": end}).fetchone()
        if first is None or first[0] is None:
            return 0
        start = float(math.floor(first[0] / batch_s) * batch_s)
    window = start
    while window + batch_s <= end:
        queue_window(window=window)
        queued += 1
        window += batch_s
    if end > start:
        conn.execute(
            f"""INSERT INTO {const.TABLE_ROLLUP_STATE} (kind, watermark) VALUES (?, ?)
                ON CONFLICT(kind) DO UPDATE SET watermark = excluded.watermark""",
            (key, max(start, end)),
        )
    return queued


def pending(conn: sqlite3.Connection, after_id: int, limit: int) -> list[OutboxRow]:
    """Unsent rows with an id above ``after_id``, oldest first."""
    rows = conn.execute(
        f"""SELECT id, kind, idem_key, window_start, window_end, body, created_at FROM {const.TABLE_OUTBOX}
            WHERE sent_at IS NULL AND error IS NULL AND id > ? ORDER BY id LIMIT ?""",
        (after_id, limit),
    ).fetchall()
    return [OutboxRow(*row) for row in rows]


def mark_sent(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> None:
    """Mark rows acknowledged by the broker (PUBACK received)."""
    conn.executemany(f"UPDATE {const.TABLE_OUTBOX} SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
                     [(now, row_id) for row_id in ids])


def mark_dead(conn: sqlite3.Connection, row_id: int, error: str) -> None:
    """Set aside a row that can never be published (it fails wire validation: a bug); kept for diagnosis, out of
    the backlog, shown by ``edge outbox``."""
    conn.execute(f"UPDATE {const.TABLE_OUTBOX} SET error = ? WHERE id = ? AND sent_at IS NULL", (error, row_id))


def count_attempt(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Count one more publish attempt of rows (shown by ``edge outbox``)."""
    conn.executemany(f"UPDATE {const.TABLE_OUTBOX} SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids])


def prune_sent(conn: sqlite3.Connection, older_than: float) -> int:
    """Delete acknowledged rows sent before ``older_than``."""
    cursor = conn.execute(f"DELETE FROM {const.TABLE_OUTBOX} WHERE sent_at IS NOT NULL AND sent_at < ?",
                          (older_than,))
    return cursor.rowcount


def _record_shed(conn: sqlite3.Connection, kind: str, rows: int, size: int, now: float) -> None:
    conn.execute(
        f"""INSERT INTO {const.TABLE_OUTBOX_SHED} (kind, rows, bytes, last_at) VALUES (?, ?, ?, ?)
            ON CONFLICT(kind) DO UPDATE SET rows = rows + excluded.rows, bytes = bytes + excluded.bytes,
              last_at = excluded.last_at""",
        (kind, rows, size, now),
    )


def _shed(conn: sqlite3.Connection, where: str, params: Sequence[object], now: float) -> int:
    victims = conn.execute(
        f"SELECT id, kind, bytes FROM {const.TABLE_OUTBOX} WHERE sent_at IS NULL AND shed_class = ? AND {where} "
        "ORDER BY id",
        (const.SHED_DETAIL, *params),
    ).fetchall()
    by_kind: dict[str, tuple[int, int]] = {}
    for _, kind, size in victims:
        rows, total = by_kind.get(kind, (0, 0))
        by_kind[kind] = (rows + 1, total + size)
    conn.executemany(f"DELETE FROM {const.TABLE_OUTBOX} WHERE id = ?", [(v[0],) for v in victims])
    for kind, (rows, total) in by_kind.items():
        _record_shed(conn, kind, rows, total, now)
    return len(victims)


def enforce_limits(conn: sqlite3.Connection, *, max_rows: int, max_bytes: int, max_age_s: float,
                   now: float) -> tuple[int, bool]:
    """Shed detail past the bounds; returns (rows shed, still over a bound with only never-shed rows left)."""
    shed = _shed(conn, "created_at < ?", (now - max_age_s,), now)
    rows, size = conn.execute(
        f"SELECT count(*), coalesce(sum(bytes), 0) FROM {const.TABLE_OUTBOX} WHERE sent_at IS NULL"
    ).fetchone()
    if rows > max_rows or size > max_bytes:
        # Walk the detail rows oldest first and shed until both bounds hold (or no detail is left).
        # Shed the shortest oldest-first prefix of detail that brings BOTH bounds back (a bound that holds needs 0).
        excess_rows = max(0, rows - max_rows)
        excess_bytes = max(0, size - max_bytes)
        cut = conn.execute(
            f"""SELECT id FROM (
                  SELECT id, count(*) OVER w AS n, sum(bytes) OVER w AS b FROM {const.TABLE_OUTBOX}
                  WHERE sent_at IS NULL AND shed_class = ?
                  WINDOW w AS (ORDER BY id ROWS UNBOUNDED PRECEDING))
                WHERE n >= ? AND b >= ? ORDER BY id LIMIT 1""",
            (const.SHED_DETAIL, excess_rows, excess_bytes),
        ).fetchone()
        limit_id = cut[0] if cut else 2**62  # not enough detail to get under: shed all of it
        shed += _shed(conn, "id <= ?", (limit_id,), now)
        rows, size = conn.execute(
            f"SELECT count(*), coalesce(sum(bytes), 0) FROM {const.TABLE_OUTBOX} WHERE sent_at IS NULL"
        ).fetchone()
    return shed, rows > max_rows or size > max_bytes


def stats(conn: sqlite3.Connection) -> OutboxStats:
    """Backlog size and age, last PUBACK, last seq, shed counts."""
    rows, size, oldest = conn.execute(
        f"""SELECT count(*), coalesce(sum(bytes), 0), min(created_at) FROM {const.TABLE_OUTBOX}
            WHERE sent_at IS NULL AND error IS NULL"""
    ).fetchone()
    dead = conn.execute(f"SELECT count(*) FROM {const.TABLE_OUTBOX} WHERE error IS NOT NULL").fetchone()[0]
    last_sent = conn.execute(f"SELECT max(sent_at) FROM {const.TABLE_OUTBOX}").fetchone()[0]
    seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (const.TABLE_OUTBOX,)).fetchone()
    shed = dict(conn.execute(f"SELECT kind, rows FROM {const.TABLE_OUTBOX_SHED}").fetchall())
    return OutboxStats(backlog_rows=rows, backlog_bytes=size, oldest_created_at=oldest, last_sent_at=last_sent,
                       last_seq=seq_row[0] if seq_row else 0, shed=shed, dead_letters=dead)
