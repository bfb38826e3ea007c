"""The fusion job on a real SQLite store: closing hours, known numbers, idempotence, late rows, outbox rows."""

import json
import sqlite3
from pathlib import Path

import pytest

from edge import const
from edge.analytics import fusion
from edge.footfall import Setup
from edge.fusion_rollup import FUSION_OUTBOX, FusionRollup, enqueue
from edge.jobs import Jobs
from edge.store import outbox
from edge.store.db import connect
from sync import wire
from sync.publisher import to_message
from tests.conftest import MakeDb, MakeWriter
from tests.edge import fused_store as store
from tests.edge.fused_store import HOUR, T0, WINDOW

NOW = T0 + 10 * 86400.0
FUSED_TABLES = (const.TABLE_AGG_FOOTFALL, const.TABLE_AGG_DWELL, const.TABLE_AGG_ZONE_DWELL,
                const.TABLE_AGG_FLOOR_HEAT, const.TABLE_AGG_STORE_HOURS)


def _dump(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 3").fetchall() for table in FUSED_TABLES}


def _footfall(conn: sqlite3.Connection, start: float) -> dict[str, object]:
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute(f"SELECT * FROM {const.TABLE_AGG_FOOTFALL} WHERE window_start = ?",
                                 (start,)).fetchone())
    finally:
        conn.row_factory = None


@pytest.fixture
def conn(fresh_db: Path) -> sqlite3.Connection:
    return connect(fresh_db)


def test_fusion__closes_hours_with_the_numbers_the_rules_give(conn: sqlite3.Connection) -> None:
    store.fill(conn, hours=3)
    result = FusionRollup(store.config()).run(conn, NOW)
    assert (result.closed_hours, result.until) == (3, T0 + 3 * HOUR)
    factor = (20 + 10 * 2.0) / (12 + 10)  # entries 20 ÷ 12 WiFi visits inside, with the prior 2.0 × 10 visits
    heard = fusion.detection_share(store.PASSER_BURSTS)  # passersby heard: 2 bursts per heard visit on average
    row = _footfall(conn, T0 + WINDOW)
    assert row == {
        "window_start": T0 + WINDOW, "window_end": T0 + 2 * WINDOW, "entries": 5, "exits": 5, "occupancy": 0,
        "occupancy_mean": pytest.approx(300 / 900, abs=1e-3), "occupancy_max": 1, "person_seconds": 300.0,
        "wifi_visitors": 2, "wifi_quick": 1, "wifi_passersby": 6, "persons_factor": pytest.approx(factor, abs=1e-4),
        # The camera's 5 entries split by the WiFi visitor share: 2 of every 3 visits inside are visitors.
        "came_in": 5.0, "visitors": pytest.approx(5 * 2 / 3, abs=0.01),
        "quick_visits": pytest.approx(5 / 3, abs=0.01), "passersby": pytest.approx(6 * factor / heard, abs=0.01),
        "capture_rate": pytest.approx(5 / (5 + 6 * factor / heard), abs=1e-3),
        "transactions": 2, "conversion": 0.4, "entrances_json": '["door-cam/door"]',
    }
    hours = conn.execute(f"SELECT window_start, entries, wifi_inside, factor_raw, persons_factor, transactions, "
                         f"conversion FROM {const.TABLE_AGG_STORE_HOURS} ORDER BY 1").fetchall()
    expected = fusion.persons_factors([fusion.HourCounts(T0 + i * HOUR, 20, 12) for i in range(3)],
                                      Setup.from_config(store.config()).factor)
    assert [h[0] for h in hours] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert [h[4] for h in hours] == [round(e.factor, 4) for e in expected]
    assert hours[0][1:] == (20, 12, round(20 / 12, 4), round(factor, 4), 8, 0.4)
    zones = conn.execute(f"SELECT zone, person_seconds, share, device_seconds FROM {const.TABLE_AGG_ZONE_DWELL} "
                         "WHERE window_start = ? ORDER BY zone", (T0 + WINDOW,)).fetchall()
    assert zones == [("back", 240.0, 0.8, 150.0), ("front", 60.0, 0.2, 0.0)]
    heat = conn.execute(f"SELECT nx, ny, cells_json, person_seconds, camera_seconds, wifi_seconds FROM "
                        f"{const.TABLE_AGG_FLOOR_HEAT} WHERE window_start = ?", (T0 + WINDOW,)).fetchone()
    assert heat == (20, 12, json.dumps([[0, 60.0], [8 * 20 + 10, 240.0]], separators=(",", ":")), 300.0, 60.0, 240.0)
    dwell = conn.execute(f"SELECT wifi_visits, mean_dwell_s, visits_json, persons_json FROM {const.TABLE_AGG_DWELL} "
                         "WHERE window_start = ?", (T0,)).fetchone()
    visits, persons = json.loads(dwell[2]), json.loads(dwell[3])
    assert (dwell[0], dwell[1], visits["0-5"], visits["10-15"], sum(visits.values())) == (3, 533.3, 1, 2, 3)
    assert persons["10-15"] == pytest.approx(2 * factor, abs=0.01)


def test_fusion__an_hour_waits_for_every_source_and_the_visit_horizon(conn: sqlite3.Connection) -> None:
    job = FusionRollup(store.config())
    store.fill(conn, hours=1, wifi_extra_s=1200)  # WiFi visits need 30 min past the hour: only 20 so far
    assert job.run(conn, NOW).closed_hours == 0
    assert job.run(conn, T0 + HOUR).closed_hours == 0, "never past the wall clock"
    for minute in range(80, 95):
        store.wifi_minute(conn, T0 + 60 * minute)
    result = job.run(conn, NOW)
    assert (result.closed_hours, result.until) == (1, T0 + HOUR)


def test_fusion__a_stalled_camera_is_not_waited_for_past_the_source_lag(conn: sqlite3.Connection) -> None:
    job = FusionRollup(store.config())
    for minute in range(10):
        store.camera_minute(conn, T0 + 60 * minute)
    for minute in range(100):
        store.wifi_minute(conn, T0 + 60 * minute)
    assert job.run(conn, NOW).closed_hours == 0, "the camera is behind but not yet considered stalled"
    for minute in range(100, 5 * 60):
        store.wifi_minute(conn, T0 + 60 * minute)
    assert job.run(conn, NOW).closed_hours == 4
    assert _footfall(conn, T0 + HOUR)["entries"] is None, "no camera data: entries unknown, not 0"


def test_fusion__running_again_changes_nothing(conn: sqlite3.Connection) -> None:
    config = store.config()
    store.fill(conn, hours=3)
    job = FusionRollup(config)
    first = enqueue(conn, config, job.run(conn, NOW), NOW)
    before, queued = _dump(conn), outbox.stats(conn).backlog_rows
    assert first == 4 * 12 and queued == first
    again = job.run(conn, NOW)
    assert (again.closed_hours, again.recomputed_hours, again.revised) == (0, 0, {})
    assert enqueue(conn, config, again, NOW) == 0
    assert FusionRollup(config).run(conn, NOW).revised == {}, "a restarted job resumes from the database"
    assert _dump(conn) == before and outbox.stats(conn).backlog_rows == queued


def test_fusion__late_rows_revise_their_windows_and_resend_them_under_the_same_key(conn: sqlite3.Connection) -> None:
    config = store.config()
    store.fill(conn, hours=3)
    job = FusionRollup(config)
    enqueue(conn, config, job.run(conn, NOW), NOW)
    sent = {row.idem_key: row.id for row in outbox.pending(conn, 0, 1000)}
    # A till scan reaches the store late: a third transaction in window 1 of hour 0.
    store.insert(conn, store.Scan(T0 + WINDOW + 700, "till-1", "E0", "4006381333931", "gtin", "04006381333931", True))
    result = job.run(conn, NOW)
    assert result.revised == {const.AGG_FOOTFALL: [T0 + WINDOW]}
    assert _footfall(conn, T0 + WINDOW)["transactions"] == 3
    assert enqueue(conn, config, result, NOW) == 1
    [resent] = [row for row in outbox.pending(conn, 0, 1000) if row.id not in sent.values()]
    assert resent.idem_key == f"fz-0001:footfall:{int(T0 + WINDOW)}:900" and resent.idem_key in sent
    assert resent.id > sent[resent.idem_key]
    assert [r["transactions"] for r in json.loads(resent.body)["rows"]] == [3]
    # A replayed camera window with one more entry overwrites its row (ON CONFLICT REPLACE): window 2 changes, and
    # with it the factor of its hour and the hours after it, so every footfall window is revised.
    store.camera_minute(conn, T0 + 2 * WINDOW + 60, entries=1)
    assert job.run(conn, NOW).revised[const.AGG_FOOTFALL] == [T0 + i * WINDOW for i in range(12)]
    assert _footfall(conn, T0 + 2 * WINDOW)["entries"] == 6
    # A visit closing after its hour was fused moves the factor of that hour and the hours after it.
    store.visit(conn, T0 + 10, 4000.0, "late", 40)
    revised = job.run(conn, NOW).revised
    assert revised[const.AGG_FOOTFALL] == [T0 + i * WINDOW for i in range(12)]
    assert revised[const.AGG_DWELL] == [T0 + i * WINDOW for i in range(12)]
    assert const.AGG_ZONE_DWELL not in revised and const.AGG_FLOOR_HEATMAP not in revised


def test_fusion__late_arrivals_end_where_one_pass_over_all_rows_ends(make_db: MakeDb) -> None:
    late_conn, fresh_conn = connect(make_db("late")), connect(make_db("fresh"))
    config = store.config()
    late_job = FusionRollup(config)
    for conn in (late_conn, fresh_conn):
        store.fill(conn, hours=3)
        if conn is late_conn:
            late_job.run(late_conn, NOW)
        store.visit(conn, T0 + HOUR + 30, 900.0, "late-1", 10)
        store.window_scans(conn, T0 + 2 * HOUR + 1.0)
        store.camera_minute(conn, T0 + 2 * WINDOW, entries=3)
    assert late_job.run(late_conn, NOW).recomputed_hours == 3
    assert FusionRollup(config).run(fresh_conn, NOW).recomputed_hours == 0
    assert _dump(late_conn) == _dump(fresh_conn)


def test_fusion__every_outbox_row_is_a_valid_wire_message(conn: sqlite3.Connection) -> None:
    config = store.config()
    store.fill(conn, hours=1)
    assert enqueue(conn, config, FusionRollup(config).run(conn, NOW), NOW) == 4 * 4
    rows = outbox.pending(conn, 0, 100)
    assert {row.kind for row in rows} == {kind for kind, _, _ in FUSION_OUTBOX}
    for row in rows:
        message = to_message(row, config.store_id, False, NOW)
        assert isinstance(message, wire.FootfallMessage | wire.DwellMessage | wire.ZoneDwellMessage
                          | wire.FloorHeatmapMessage)
        assert len(message.rows) >= 1
    heats = [to_message(r, config.store_id, False, NOW) for r in rows if r.kind == const.AGG_FLOOR_HEATMAP]
    first, second = (h.rows[0] for h in heats[:2])  # type: ignore[attr-defined]
    assert isinstance(second, wire.FloorHeatmapRow)
    assert second.origin == (0.0, 0.0) and second.cells == [(0, 60.0), (170, 240.0)]
    assert first.person_seconds == 330.0, "the first window has no camera window before it to start from"
    classes = dict(conn.execute(f"SELECT DISTINCT kind, shed_class FROM {const.TABLE_OUTBOX}").fetchall())
    assert classes == {const.AGG_FOOTFALL: const.SHED_KEEP, const.AGG_DWELL: const.SHED_KEEP,
                       const.AGG_ZONE_DWELL: const.SHED_KEEP, const.AGG_FLOOR_HEATMAP: const.SHED_DETAIL}


def test_fusion__the_daemon_declares_the_job_and_runs_it_through_the_writer(fresh_db: Path,
                                                                             make_writer: MakeWriter) -> None:
    conn = connect(fresh_db)
    store.fill(conn, hours=2)
    conn.close()
    config = store.config(fresh_db)
    jobs = Jobs(config, make_writer(fresh_db), lambda: [], lambda: {}, started_at=T0)
    assert "fusion" in {job.name for job in jobs.declare()}
    jobs.rollup_fusion()
    with sqlite3.connect(fresh_db) as check:
        assert check.execute(f"SELECT count(*) FROM {const.TABLE_AGG_FOOTFALL}").fetchone()[0] == 8
        kinds = dict(check.execute(f"SELECT kind, count(*) FROM {const.TABLE_OUTBOX} GROUP BY kind").fetchall())
    assert kinds == {kind: 8 for kind, _, _ in FUSION_OUTBOX}
