"""Rollups bucket scans by event time into aligned windows, resumably; retention prunes by table age."""

import operator
import random
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from edge import const
from edge.config.models import Retention
from edge.events import Scan
from edge.store import retention
from edge.store.db import connect
from edge.store.rollup import rollup_scans

W = 60
T0 = float(W * 28_333_334)  # 2023-11-14T22:14:00Z, a window boundary
DAY = 86_400.0
AggRow = tuple[float, float, str, int, int, int, int]


@pytest.fixture
def conn(fresh_db: Path) -> Iterator[sqlite3.Connection]:
    with closing(connect(fresh_db)) as connection:
        yield connection


def scan(ts: float, device: str = "till-1", gtin: str | None = "A", valid: bool = True) -> Scan:
    return Scan(ts=ts, device=device, symbology="E0", text=gtin or "junk", kind="gtin" if valid else "other",
                gtin=gtin, valid=valid, error=None if valid else "bad check digit")


def insert(conn: sqlite3.Connection, scans: Iterable[Scan]) -> None:
    columns = Scan.COLUMNS
    conn.executemany(
        f"INSERT INTO scans ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        map(operator.attrgetter(*columns), scans),
    )


def aggregates(conn: sqlite3.Connection) -> list[AggRow]:
    return [tuple(row) for row in conn.execute(
        "SELECT window_start, window_end, device, scans, valid, invalid, distinct_gtins FROM agg_scans "
        "ORDER BY window_start, device")]


HAND_BUILT = [
    # window T0: till-1 has 5 scans, 4 valid over 3 distinct GTINs (the invalid C does not count)
    scan(T0 + 1, gtin="A"),
    scan(T0 + 5, gtin="A"),
    scan(T0 + 10, gtin="B"),
    scan(T0 + 20, gtin="C", valid=False),
    scan(T0 + 59.5, gtin="D"),
    # window T0: aisle-3 has one valid and one unreadable scan
    scan(T0 + 30, device="aisle-3", gtin="A"),
    scan(T0 + 31, device="aisle-3", gtin=None, valid=False),
    # window T0+60: starts exactly on the boundary
    scan(T0 + 60, gtin="A"),
    # window T0+120: still open at closed_until = T0+125
    scan(T0 + 125, gtin="E"),
]


def test_rollup__counts_valid_invalid_and_distinct_gtins_per_device_and_window(
        conn: sqlite3.Connection) -> None:
    insert(conn, reversed(HAND_BUILT))  # insertion order must not matter, only event time

    written = rollup_scans(conn, closed_until=T0 + 125, window_s=W).rows

    assert written == 3
    assert aggregates(conn) == [
        (T0, T0 + 60, "aisle-3", 2, 1, 1, 1),
        (T0, T0 + 60, "till-1", 5, 4, 1, 3),
        (T0 + 60, T0 + 120, "till-1", 1, 1, 0, 1),
    ]


def test_rollup__windows_are_aligned_to_multiples_of_the_window_length(conn: sqlite3.Connection) -> None:
    rng = random.Random(7)
    insert(conn, [scan(T0 + 13.7 + rng.uniform(0, 3_600)) for _ in range(200)])

    rollup_scans(conn, closed_until=T0 + 7_200, window_s=300)

    rows = aggregates(conn)
    assert sum(row[3] for row in rows) == 200
    for start, end, *_ in rows:
        assert start % 300 == 0
        assert end == start + 300


def test_rollup__only_windows_closed_by_closed_until_are_rolled(conn: sqlite3.Connection) -> None:
    insert(conn, HAND_BUILT)

    assert rollup_scans(conn, closed_until=T0 + 59.9, window_s=W).rows == 0
    assert aggregates(conn) == []

    rollup_scans(conn, closed_until=T0 + 60, window_s=W)
    assert {row[0] for row in aggregates(conn)} == {T0}


def test_rollup__is_resumable_without_double_counting(conn: sqlite3.Connection) -> None:
    insert(conn, HAND_BUILT)
    rollup_scans(conn, closed_until=T0 + 125, window_s=W)
    first = aggregates(conn)

    assert rollup_scans(conn, closed_until=T0 + 125, window_s=W).rows == 0
    assert aggregates(conn) == first

    assert rollup_scans(conn, closed_until=T0 + 185, window_s=W).rows == 1
    assert aggregates(conn) == [*first, (T0 + 120, T0 + 180, "till-1", 1, 1, 0, 1)]


def test_rollup__with_no_scans_writes_nothing(conn: sqlite3.Connection) -> None:
    assert rollup_scans(conn, closed_until=T0 + 3_600, window_s=W).rows == 0
    assert aggregates(conn) == []


def random_scans(seed: int, count: int, span_s: float) -> list[Scan]:
    rng = random.Random(seed)
    gtins = [f"0{n:013d}" for n in range(25)]
    scans = [
        scan(T0 + rng.uniform(0, span_s), device=rng.choice(["till-1", "till-2", "aisle-3"]),
             gtin=rng.choice(gtins), valid=rng.random() > 0.1)
        for _ in range(count)
    ]
    return sorted(scans, key=lambda s: s.ts)


def test_rollup__aggregates_do_not_depend_on_replay_speed(make_db: Callable[[str], Path]) -> None:
    scans = random_scans(seed=42, count=2_000, span_s=20 * W)
    final = T0 + 21 * W

    with closing(connect(make_db("at-once"))) as at_once:
        insert(at_once, scans)
        rollup_scans(at_once, closed_until=final, window_s=W)
        expected = aggregates(at_once)

    with closing(connect(make_db("stepwise"))) as stepwise:
        rng = random.Random(3)
        position = 0
        while position < len(scans):
            step = scans[position:position + rng.randint(1, 250)]
            position += len(step)
            insert(stepwise, step)
            # Live: the job runs at some "now" no earlier than the newest event it has seen.
            rollup_scans(stepwise, closed_until=step[-1].ts, window_s=W)
        rollup_scans(stepwise, closed_until=final, window_s=W)
        actual = aggregates(stepwise)

    assert len(expected) > 20 * 2
    assert sum(row[3] for row in expected) == len(scans)
    assert actual == expected


# -- retention ---------------------------------------------------------------------------------------------

NOW = T0 + 200 * DAY


def insert_agg(conn: sqlite3.Connection, window_end: float) -> None:
    conn.execute("INSERT INTO agg_scans VALUES (?, ?, 'till-1', 1, 1, 0, 1)", (window_end - W, window_end))


def test_retention__prunes_each_table_by_its_own_age(conn: sqlite3.Connection) -> None:
    insert(conn, [scan(NOW - 8 * DAY), scan(NOW - 7 * DAY), scan(NOW - 6 * DAY)])
    for age_days in (91, 90, 89, 8):
        insert_agg(conn, NOW - age_days * DAY)

    deleted = retention.prune(conn, {const.TABLE_SCANS: 7, const.TABLE_AGG_SCANS: 90}, NOW)

    assert deleted == {const.TABLE_SCANS: 1, const.TABLE_AGG_SCANS: 1}
    # A row exactly at the cut-off is kept; raw rows go at 7 days while 8-day-old aggregates stay.
    kept_scans = [row[0] for row in conn.execute("SELECT ts FROM scans ORDER BY ts")]
    assert kept_scans == [NOW - 7 * DAY, NOW - 6 * DAY]
    assert [row[0] for row in conn.execute("SELECT window_end FROM agg_scans ORDER BY window_end")] == [
        NOW - 90 * DAY, NOW - 89 * DAY, NOW - 8 * DAY]


def test_retention__per_table_override_from_config_applies_to_that_table_only(
        conn: sqlite3.Connection) -> None:
    insert(conn, [scan(NOW - 20 * DAY), scan(NOW - 40 * DAY)])
    insert_agg(conn, NOW - 20 * DAY)
    config = Retention(raw_days=7, aggregate_days=10, per_table={const.TABLE_SCANS: 30})
    days = {table: config.days_for(table) for table in retention.TIME_COLUMNS}

    deleted = retention.prune(conn, days, NOW)

    assert (days[const.TABLE_SCANS], days[const.TABLE_AGG_SCANS]) == (30, 10)
    assert (deleted[const.TABLE_SCANS], deleted[const.TABLE_AGG_SCANS]) == (1, 1)
    assert [row[0] for row in conn.execute("SELECT ts FROM scans")] == [NOW - 20 * DAY]


def test_retention__unknown_per_table_override_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown table 'footfall'"):
        Retention(per_table={"footfall": 3})
