"""The transactional outbox: seq, batch windows, PUBACK marking, and the bounds with their shed policy."""

import json
import sqlite3
from pathlib import Path

import pytest

from edge import const
from edge.jobs import SCANS_WINDOW_SQL
from edge.store import outbox, rollup
from edge.store.db import connect

T0 = 1_790_000_000.0 - (1_790_000_000.0 % 900)  # a 15-minute boundary


@pytest.fixture
def conn(fresh_db: Path) -> sqlite3.Connection:
    return connect(fresh_db)


def _queue(conn: sqlite3.Connection, kind: str, shed_class: str, size: int = 100, created: float = T0) -> int:
    return outbox.enqueue(conn, kind=kind, shed_class=shed_class, idem_key=f"k-{kind}-{created}", body="x" * size,
                          now=created)


def test_outbox__seq_increases_and_is_never_reused_after_deletes(conn: sqlite3.Connection) -> None:
    first = [_queue(conn, "scans", const.SHED_KEEP) for _ in range(3)]
    outbox.mark_sent(conn, first, T0 + 1)
    assert outbox.prune_sent(conn, T0 + 2) == 3
    later = _queue(conn, "scans", const.SHED_KEEP)
    assert first == [1, 2, 3]
    assert later == 4, "AUTOINCREMENT: a pruned id is never handed out again"
    assert outbox.stats(conn).last_seq == 4


def test_outbox__rows_are_pending_until_marked_sent(conn: sqlite3.Connection) -> None:
    ids = [_queue(conn, "scans", const.SHED_KEEP) for _ in range(4)]
    assert [row.id for row in outbox.pending(conn, 0, 10)] == ids
    outbox.mark_sent(conn, ids[:2], T0 + 5)
    assert [row.id for row in outbox.pending(conn, 0, 10)] == ids[2:]
    assert [row.id for row in outbox.pending(conn, ids[2], 10)] == ids[3:]
    stats = outbox.stats(conn)
    assert (stats.backlog_rows, stats.last_sent_at) == (2, T0 + 5)


def _scan_rows(conn: sqlite3.Connection, times: list[float]) -> None:
    conn.executemany(
        f"INSERT INTO {const.TABLE_SCANS} (ts, device, text, kind, gtin, valid) "
        "VALUES (?, 'till-1', 'x', 'gtin', ?, 1)",
        [(t, f"{i:014d}") for i, t in enumerate(times)],
    )


def test_outbox__one_message_per_closed_batch_window_with_its_aggregates(conn: sqlite3.Connection) -> None:
    _scan_rows(conn, [T0 + 10, T0 + 70, T0 + 950, T0 + 2000])
    rollup.rollup_scans(conn, T0 + 2700, 60)
    queued = outbox.enqueue_windows(conn, store_id="s1", kind="scans", select_sql=SCANS_WINDOW_SQL,
                                    closed_until=T0 + 2700, batch_s=900, shed_class=const.SHED_KEEP, now=T0 + 2700)
    rows = outbox.pending(conn, 0, 10)
    assert queued == 3 and len(rows) == 3, "every closed 15-minute window gets a message, empty or not"
    bodies = [json.loads(row.body)["rows"] for row in rows]
    assert [sum(r["scans"] for r in body) for body in bodies] == [2, 1, 1]
    assert [row.idem_key for row in rows] == [f"s1:scans:{int(T0 + i * 900)}:900" for i in range(3)]
    again = outbox.enqueue_windows(conn, store_id="s1", kind="scans", select_sql=SCANS_WINDOW_SQL,
                                   closed_until=T0 + 2700, batch_s=900, shed_class=const.SHED_KEEP, now=T0 + 2700)
    assert again == 0, "a window is queued once"


def test_outbox__bounds_shed_detail_oldest_first_and_never_counts(conn: sqlite3.Connection) -> None:
    for i in range(10):
        _queue(conn, "heatmap" if i % 2 else "scans", const.SHED_DETAIL if i % 2 else const.SHED_KEEP,
               created=T0 + i)
    shed, over = outbox.enforce_limits(conn, max_rows=7, max_bytes=10**9, max_age_s=10**9, now=T0 + 20)
    assert (shed, over) == (3, False)
    left = outbox.pending(conn, 0, 100)
    assert [row.kind for row in left].count("scans") == 5, "counts are never shed"
    assert [row.id for row in left if row.kind == "heatmap"] == [8, 10], "the oldest detail went first"
    assert outbox.stats(conn).shed == {"heatmap": 3}

    shed, over = outbox.enforce_limits(conn, max_rows=2, max_bytes=10**9, max_age_s=10**9, now=T0 + 20)
    assert (shed, over) == (2, True), "with only never-shed rows left the bound stays exceeded, and says so"
    assert len(outbox.pending(conn, 0, 100)) == 5


def test_outbox__byte_and_age_bounds(conn: sqlite3.Connection) -> None:
    for i in range(4):
        _queue(conn, "health", const.SHED_DETAIL, size=1000, created=T0 + i)
    _queue(conn, "scans", const.SHED_KEEP, size=1000, created=T0)
    shed, over = outbox.enforce_limits(conn, max_rows=100, max_bytes=3000, max_age_s=10**9, now=T0 + 10)
    assert (shed, over) == (2, False)
    shed, _ = outbox.enforce_limits(conn, max_rows=100, max_bytes=10**9, max_age_s=5, now=T0 + 8.5)
    assert shed == 2, "detail older than the age bound is shed"
    assert [row.kind for row in outbox.pending(conn, 0, 100)] == ["scans"], "old counts stay"


def test_outbox__a_late_scan_revises_its_window_and_resends_the_batch(conn: sqlite3.Connection) -> None:
    _scan_rows(conn, [T0 + 10, T0 + 70])
    first = rollup.rollup_scans(conn, T0 + 1000, 60)
    outbox.enqueue_windows(conn, store_id="s1", kind="scans", select_sql=SCANS_WINDOW_SQL, closed_until=T0 + 1000,
                           batch_s=900, shed_class=const.SHED_KEEP, now=T0 + 1000, revised=first.revised_windows)
    # A scan for the first minute reaches the store after its window (and its batch) were closed and sent.
    _scan_rows(conn, [T0 + 20])
    again = rollup.rollup_scans(conn, T0 + 1010, 60)
    assert (again.late_rows, again.revised_windows) == (1, (T0,))
    outbox.enqueue_windows(conn, store_id="s1", kind="scans", select_sql=SCANS_WINDOW_SQL, closed_until=T0 + 1010,
                           batch_s=900, shed_class=const.SHED_KEEP, now=T0 + 1010, revised=again.revised_windows)
    sent = outbox.pending(conn, 0, 10)
    assert [row.idem_key for row in sent] == [f"s1:scans:{int(T0)}:900"] * 2, "same key, higher seq: HQ upserts"
    assert [sum(r["scans"] for r in json.loads(row.body)["rows"]) for row in sent] == [2, 3]
    assert rollup.rollup_scans(conn, T0 + 1020, 60).late_rows == 0, "each late row is recounted once"
