"""The daemon's scheduled jobs: rollups with their outbox rows, health for HQ, outbox bounds, retention, heartbeat.

Every job does its database work in one ``Writer.call``, so the aggregates and the outbox rows that carry them
to HQ commit in the same transaction.
"""

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict

from edge import __version__, camera_zones, const, fusion_rollup
from edge.config.models import EdgeConfig
from edge.health import DeviceMonitor
from edge.scheduler import Job
from edge.store import outbox, retention, rollup, state
from edge.store.writer import Writer
from edge.wifi_rollup import WifiRollup

logger = logging.getLogger(__name__)

SCANS_WINDOW_SQL = f"""
    SELECT device, window_start, window_end, scans, valid, invalid, distinct_gtins FROM {const.TABLE_AGG_SCANS}
    WHERE window_start >= :start AND window_start < :end ORDER BY window_start, device"""

OUTBOX_MAINTENANCE_S = 60.0
WIFI_ROLLUP_S = 15.0
CAMERA_OUTBOX_S = 15.0
FUSION_S = 30.0

# Camera windows arrive already aggregated by the drivers; each batch window of them travels as one message.
CAMERA_OUTBOX = (
    (const.AGG_TRAFFIC, const.SHED_KEEP, f"""
        SELECT t.window_start, t.window_end, t.camera, t.line, t.in_count, t.out_count,
               coalesce(o.occupancy, 0) AS occupancy, coalesce(o.visible_mean, 0) AS visible_mean,
               coalesce(o.visible_max, 0) AS visible_max
        FROM {const.TABLE_AGG_TRAFFIC} AS t LEFT JOIN {const.TABLE_AGG_OCCUPANCY} AS o
          ON o.window_start = t.window_start AND o.camera = t.camera
        WHERE t.window_start >= :start AND t.window_start < :end ORDER BY t.window_start, t.camera, t.line"""),
    (const.AGG_HEATMAP, const.SHED_DETAIL, f"""
        SELECT window_start, window_end, camera, json_array(origin_x, origin_y) AS origin__json, cell_m, nx, ny,
               cells_json AS cells__json, person_seconds FROM {const.TABLE_AGG_CAMERA_HEATMAP}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start, camera"""),
)

# What each WiFi aggregate kind sends to HQ per batch window: the rows of its table in that window.
# Shelf-label windows (label health, update outcomes) are written by the ESL drivers, one row per AP and window.
ESL_OUTBOX = (
    (const.AGG_ESL, const.SHED_KEEP, f"""
        SELECT window_start, window_end, ap, ap_state, labels, low_battery, timed_out, missing, confirmed, failed,
               open_updates, failures_json AS failures__json, commands_json AS commands__json
        FROM {const.TABLE_AGG_ESL}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start, ap"""),
)
DELIVERED_CAMERA = f"""SELECT min(last) FROM (SELECT max(window_end) AS last FROM {const.TABLE_AGG_OCCUPANCY}
                       GROUP BY camera)"""
DELIVERED_ESL = f"SELECT min(last) FROM (SELECT max(window_end) AS last FROM {const.TABLE_AGG_ESL} GROUP BY ap)"

WIFI_OUTBOX = (
    (const.AGG_PRESENCE, const.SHED_KEEP, f"""
        SELECT window_start, window_end, frames, devices, stable_devices, randomized_clusters, probe_rate,
               persons_estimate FROM {const.TABLE_AGG_PRESENCE}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start"""),
    (const.AGG_VISITS, const.SHED_KEEP, f"""
        SELECT window_start, window_end, visitors, passersby, capture_rate, repeat_visitors,
               dwell_buckets_json AS dwell_buckets__json FROM {const.TABLE_AGG_VISITS}
        WHERE window_start >= :start AND window_start < :end AND visitors + passersby > 0
        ORDER BY window_start"""),
    (const.AGG_ZONES, const.SHED_DETAIL, f"""
        SELECT window_start, window_end, zone, device_seconds, devices FROM {const.TABLE_AGG_ZONES}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start, zone"""),
)


class Jobs:
    """The jobs of one daemon, bound to its config, writer and device monitors."""

    def __init__(self, config: EdgeConfig, writer: Writer, monitors: Callable[[], Iterable[DeviceMonitor]],
                 extra_state: Callable[[], dict[str, object]], started_at: float,
                 salt_period: Callable[[], float | None] = lambda: None) -> None:
        self.config = config
        self.wifi = WifiRollup(config)
        self.fusion = fusion_rollup.FusionRollup(config)
        self.salt_period = salt_period
        self.writer = writer
        self.monitors = monitors
        self.extra_state = extra_state
        self.started_at = started_at
        self._last_health = time.time()
        self._outbox_over = False

    def declare(self) -> list[Job]:
        """Every periodic job, in one place."""
        runtime, sync = self.config.runtime, self.config.sync
        jobs = [
            Job("heartbeat", runtime.heartbeat_s, self.heartbeat),
            Job("rollup_scans", max(1.0, runtime.rollup_window_s / 4), self.rollup_scans),
            Job("retention", runtime.retention_interval_s, self.retention),
        ]
        if self.wifi.enabled:
            jobs.append(Job("rollup_wifi", WIFI_ROLLUP_S, self.rollup_wifi))
        if any(device.type == "camera" for device in self.config.enabled_devices()):
            jobs.append(Job("camera_zones", CAMERA_OUTBOX_S, self.camera_zones))
        if self.fusion.enabled:
            jobs.append(Job("fusion", FUSION_S, self.rollup_fusion))
        if sync.enabled:
            jobs += [
                Job("camera_uplink", CAMERA_OUTBOX_S, lambda: self.window_uplink(DELIVERED_CAMERA, CAMERA_OUTBOX)),
                Job("esl_uplink", CAMERA_OUTBOX_S, lambda: self.window_uplink(DELIVERED_ESL, ESL_OUTBOX)),
                Job("health_uplink", sync.health_every_s, self.health_uplink),
                Job("outbox_bounds", OUTBOX_MAINTENANCE_S, self.outbox_bounds),
            ]
        return jobs

    def heartbeat(self) -> None:
        """Write device status and daemon state for the CLI."""
        self.writer.call(self.write_heartbeat_rows)

    def write_heartbeat_rows(self, conn: sqlite3.Connection) -> None:
        """Device status and daemon state rows (also written once more on shutdown)."""
        writer_stats = asdict(self.writer.stats)
        writer_stats["queue_depth"] = self.writer.queue_depth
        statuses = [monitor.snapshot() for monitor in self.monitors()]
        state.upsert_devices(conn, statuses)
        state.prune_devices(conn, [s.name for s in statuses])  # a device removed by a reload leaves status
        state.put_state(conn, {"heartbeat_at": time.time(), "writer": writer_stats, **self.extra_state()})

    def rollup_scans(self) -> None:
        """Aggregate closed scan windows and, with sync on, queue closed batch windows for HQ."""
        runtime, sync = self.config.runtime, self.config.sync
        closed_until = time.time() - runtime.rollup_lateness_s

        def work(conn: sqlite3.Connection) -> rollup.RollupResult:
            result = rollup.rollup_scans(conn, closed_until, runtime.rollup_window_s)
            if sync.enabled:
                outbox.enqueue_windows(conn, store_id=self.config.store_id, kind=const.AGG_SCANS,
                                       select_sql=SCANS_WINDOW_SQL, closed_until=closed_until,
                                       batch_s=sync.batch_window_s, shed_class=const.SHED_KEEP, now=time.time(),
                                       revised=result.revised_windows)
            return result

        result = self.writer.call(work)
        if result.late_rows:
            logger.info("%d late scan(s) recounted in %d already closed window(s); HQ gets the corrected windows",
                        result.late_rows, len(result.revised_windows))

    def rollup_wifi(self) -> None:
        """Presence, visits and zone dwell from new sightings; with sync on, closed batch windows for HQ."""
        sync = self.config.sync

        def work(conn: sqlite3.Connection) -> None:
            self.wifi.run(conn, time.time(), self.salt_period())
            closed = self.wifi.presence.state.closed_until
            if sync.enabled and closed is not None:
                for kind, shed_class, select_sql in WIFI_OUTBOX:
                    until = self.wifi.visits_until if kind == const.AGG_VISITS else closed
                    if until is not None:
                        outbox.enqueue_windows(conn, store_id=self.config.store_id, kind=kind, select_sql=select_sql,
                                               closed_until=until, batch_s=sync.batch_window_s,
                                               shed_class=shed_class, now=time.time())

        self.writer.call(work)

    def rollup_fusion(self) -> None:
        """Fuse closed store-local hours (footfall, dwell, zone dwell, floor heatmap); with sync on, queue them."""

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            result = self.fusion.run(conn, now)
            if self.config.sync.enabled:
                fusion_rollup.enqueue(conn, self.config, result, now)

        self.writer.call(work)

    def camera_zones(self) -> None:
        """Split new camera heatmap windows over the floor plan's zones (per-zone occupancy)."""
        self.writer.call(lambda conn: camera_zones.rollup(conn, self.config.floor_plan))

    def window_uplink(self, delivered_sql: str, kinds: "tuple[tuple[str, str, str], ...]") -> None:
        """Queue closed batch windows of aggregates that drivers write whole (camera traffic and heatmaps, ESL
        windows) for HQ, once a device has delivered any.

        A batch window is closed when every device has delivered a window past it (event time: a replayed video
        closes windows as fast as it plays), and never later than the wall clock allows.
        """
        sync = self.config.sync

        def work(conn: sqlite3.Connection) -> None:
            delivered = conn.execute(delivered_sql).fetchone()[0]
            if delivered is None:
                return
            closed_until = min(float(delivered), time.time() - self.config.runtime.rollup_lateness_s)
            for kind, shed_class, select_sql in kinds:
                outbox.enqueue_windows(conn, store_id=self.config.store_id, kind=kind, select_sql=select_sql,
                                       closed_until=closed_until, batch_s=sync.batch_window_s,
                                       shed_class=shed_class, now=time.time())

        self.writer.call(work)

    def health_uplink(self) -> None:
        """Queue a health message for HQ covering the time since the last one."""
        now = time.time()
        start, self._last_health = self._last_health, now
        stats = self.writer.stats

        def work(conn: sqlite3.Connection) -> None:
            backlog = outbox.stats(conn)
            body = {
                "gateway": {
                    "uptime_s": round(now - self.started_at, 1), "version": __version__,
                    "free_disk_bytes": stats.free_disk_bytes, "disk_low": stats.disk_low,
                    "dropped_queue_full": stats.dropped_queue_full, "shed_low_disk": stats.shed_low_disk,
                    "outbox_backlog": backlog.backlog_rows, "outbox_shed": sum(backlog.shed.values()),
                },
                "rows": [
                    {"device": s.name, "kind": s.kind, "state": s.state, "reason": s.reason, "events": s.events,
                     "reconnects": s.reconnects, "counters": s.counters}
                    for s in (monitor.snapshot() for monitor in self.monitors())
                ],
            }
            outbox.enqueue(conn, kind=const.AGG_HEALTH, shed_class=const.SHED_DETAIL,
                           idem_key=f"{self.config.store_id}:{const.AGG_HEALTH}:{int(now)}",
                           body=json.dumps(body, separators=(",", ":")), now=now, window_start=start, window_end=now)

        self.writer.call(work)

    def outbox_bounds(self) -> None:
        """Shed outbox detail past the configured bounds and prune acknowledged rows."""
        limits = self.config.sync.outbox
        now = time.time()

        def work(conn: sqlite3.Connection) -> tuple[int, bool]:
            shed, over = outbox.enforce_limits(conn, max_rows=limits.max_rows, max_bytes=limits.max_bytes,
                                               max_age_s=limits.max_age_days * 86400, now=now)
            outbox.prune_sent(conn, now - limits.sent_retention_hours * 3600)
            state.put_state(conn, {"outbox_over_bound": over})
            return shed, over

        shed, over = self.writer.call(work)
        if shed:
            logger.warning("Outbox over its bounds: shed %d detail message(s) (heatmaps, health); counts kept", shed)
        if over and not self._outbox_over:
            logger.error("Outbox still over its bounds with only never-shed messages left: HQ unreachable too long")
        elif self._outbox_over and not over:
            logger.warning("Outbox back within its bounds")
        self._outbox_over = over

    def retention(self) -> None:
        """Delete rows older than their table's retention."""
        days = {table: self.config.storage.retention.days_for(table) for table in retention.TIME_COLUMNS}
        deleted = self.writer.call(lambda conn: retention.prune(conn, days, time.time()))
        if any(deleted.values()):
            logger.info("Retention deleted %s", ", ".join(f"{t}: {n}" for t, n in deleted.items() if n))
