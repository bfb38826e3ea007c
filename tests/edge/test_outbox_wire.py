"""Every aggregate kind's outbox body, built by the jobs' SQL from its table, is a valid wire message."""

import json
import sqlite3
from pathlib import Path

import pytest

from edge import const
from edge.jobs import CAMERA_OUTBOX, SCANS_WINDOW_SQL, WIFI_OUTBOX
from edge.store import outbox
from edge.store.db import connect
from sync.publisher import to_message

T0 = 1_790_000_000.0 - (1_790_000_000.0 % 900)

FIXTURES = {
    const.TABLE_AGG_SCANS: ("(window_start, window_end, device, scans, valid, invalid, distinct_gtins)",
                            (T0, T0 + 60, "till-1", 12, 11, 1, 9)),
    const.TABLE_AGG_PRESENCE: ("(window_start, window_end, frames, devices, stable_devices, randomized_clusters, "
                               "probe_rate, persons_estimate, detail_json)",
                               (T0, T0 + 60, 400, 50, 6, 19, 6.7, 23.1, "{}")),
    const.TABLE_AGG_VISITS: ("(window_start, window_end, visitors, passersby, capture_rate, repeat_visitors, "
                             "dwell_buckets_json)",
                             (T0, T0 + 60, 3, 9, 0.25, 1, '{"5-20m": 2, "20-60m": 1, "1-6h": 0, "6h+": 0}')),
    const.TABLE_AGG_ZONES: ("(window_start, window_end, zone, device_seconds, devices)",
                            (T0, T0 + 60, "fresh", 512.0, 11)),
    const.TABLE_AGG_TRAFFIC: ("(window_start, window_end, camera, line, in_count, out_count)",
                              (T0, T0 + 60, "cam-1", "door", 7, 5)),
    const.TABLE_AGG_OCCUPANCY: ("(window_start, window_end, camera, entries, exits, occupancy, occupancy_max, "
                                "visible_mean, visible_max, frames, occupancy_resets)",
                                (T0, T0 + 60, "cam-1", 7, 5, 14, 15, 2.5, 4, 600, 0)),
    const.TABLE_AGG_CAMERA_HEATMAP: ("(window_start, window_end, camera, origin_x, origin_y, cell_m, nx, ny, "
                                     "cells_json, person_seconds)",
                                     (T0, T0 + 60, "cam-1", 0.0, 0.0, 0.5, 8, 6, "[[3, 12.5], [11, 4.0]]", 16.5)),
}

KINDS = [(const.AGG_SCANS, const.SHED_KEEP, SCANS_WINDOW_SQL), *WIFI_OUTBOX, *CAMERA_OUTBOX]


@pytest.mark.parametrize(("kind", "shed_class", "select_sql"), KINDS, ids=[k[0] for k in KINDS])
def test_outbox__every_kind_body_is_a_valid_wire_message(fresh_db: Path, kind: str, shed_class: str,
                                                         select_sql: str) -> None:
    conn: sqlite3.Connection = connect(fresh_db)
    for table, (columns, values) in FIXTURES.items():
        conn.execute(f"INSERT INTO {table} {columns} VALUES ({', '.join('?' * len(values))})", values)
    assert outbox.enqueue_windows(conn, store_id="s1", kind=kind, select_sql=select_sql, closed_until=T0 + 900,
                                  batch_s=900, shed_class=shed_class, now=T0 + 901) == 1
    [row] = outbox.pending(conn, 0, 10)
    assert json.loads(row.body)["rows"], "the fixture row travels"
    message = to_message(row, "s1", False, T0 + 902)
    assert message.kind == kind  # type: ignore[attr-defined]
