"""The daemon's lifecycle: a flat list of init/start steps, and the same in reverse on stop."""

import logging
import os
import signal
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from drivers import registry
from edge import __version__
from edge.config.models import EdgeConfig
from edge.driver import Driver, DriverContext, EventSink
from edge.events import Event
from edge.health import DeviceMonitor
from edge.scheduler import Job, Scheduler
from edge.store import db, retention, rollup, state
from edge.store.writer import Writer
from edge.systemd import notify, watchdog_interval_s

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class _WriterSink(EventSink):
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def submit(self, event: Event) -> bool:
        return self._writer.submit(event)


class App:
    """One running daemon: store, drivers, scheduler and the systemd handshake."""

    def __init__(self, config: EdgeConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.stop_event = threading.Event()
        self.started_at = time.time()
        self.writer: Writer | None = None
        self.scheduler: Scheduler | None = None
        self.monitors: dict[str, DeviceMonitor] = {}
        self.drivers: list[Driver] = []
        self._watchdog: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the daemon up, then tell systemd it is ready."""
        self.init_drivers()
        self.init_store()
        self.start_writer()
        self.start_drivers()
        self.start_scheduler()
        self.start_watchdog()
        notify(f"READY=1\nSTATUS=running {len(self.drivers)} device(s)")
        logger.info("StoreEdge %s running for store %s with %d device(s)", __version__, self.config.store_id,
                    len(self.drivers))

    def stop(self) -> None:
        """Stop in reverse order and flush the writer; safe to call twice."""
        notify("STOPPING=1")
        self.stop_event.set()
        for driver in reversed(self.drivers):
            driver.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.writer is not None:
            try:
                self.writer.call(self._write_heartbeat_rows, timeout=STOP_TIMEOUT_S / 2)
                self.writer.call(lambda conn: state.put_state(conn, {"stopped_at": time.time()}))
            except Exception as err:
                logger.error("Final status write failed: %s", err)
            self.writer.stop(timeout=STOP_TIMEOUT_S / 2)
        logger.info("StoreEdge stopped")

    def run_until_signal(self) -> None:
        """Start, wait for SIGTERM/SIGINT, stop."""
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            logger.info("Received %s; stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start()
            self.stop_event.wait()
        finally:
            self.stop()

    # -- steps -----------------------------------------------------------------------------------------------

    def init_drivers(self) -> None:
        """Resolve every enabled device's driver class (a missing library is a config error)."""
        self._driver_classes = {
            device.name: registry.driver_class(device.type)
            for device in self.config.enabled_devices()
        }

    def init_store(self) -> None:
        """Create or migrate the database (backed up first when migrations are pending)."""
        storage = self.config.storage
        db.migrate(storage.path, storage.backups_kept)

    def start_writer(self) -> None:
        """Start the single writer thread and record the daemon's identity."""
        storage = self.config.storage
        self.writer = Writer(storage.path, queue_size=storage.queue_size, batch_size=storage.batch_size,
                             flush_interval_s=storage.flush_interval_s, min_free_disk_mb=storage.min_free_disk_mb)
        self.writer.start()
        names = [device.name for device in self.config.enabled_devices()]
        self.writer.call(lambda conn: state.prune_devices(conn, names))
        self.writer.call(lambda conn: state.put_state(conn, {
            "started_at": self.started_at, "pid": os.getpid(), "version": __version__,
            "store_id": self.config.store_id, "config_path": str(self.config_path or ""),
            "heartbeat_s": self.config.runtime.heartbeat_s, "stopped_at": None,
        }))

    def start_drivers(self) -> None:
        """Start every enabled device; a device that cannot open retries in the background."""
        assert self.writer is not None
        sink = _WriterSink(self.writer)
        for device in self.config.enabled_devices():
            kind = device.type
            monitor = DeviceMonitor(name=device.name, kind=kind)
            self.monitors[device.name] = monitor
            driver = self._driver_classes[device.name](device, DriverContext(monitor, sink))
            driver.start()
            self.drivers.append(driver)

    def start_scheduler(self) -> None:
        """Start the scheduler with every job the daemon runs."""
        assert self.writer is not None
        runtime = self.config.runtime
        jobs = [
            Job("heartbeat", runtime.heartbeat_s, self.job_heartbeat),
            Job("rollup_scans", max(1.0, runtime.rollup_window_s / 4), self.job_rollup_scans),
            Job("retention", runtime.retention_interval_s, self.job_retention),
        ]
        self.scheduler = Scheduler(jobs, self.writer)
        self.scheduler.start()

    def start_watchdog(self) -> None:
        """Ping the systemd watchdog while every worker thread shows recent progress."""
        interval = watchdog_interval_s()
        if interval is None:
            return
        self._watchdog = threading.Thread(target=self._watchdog_loop, args=(interval,), name="watchdog",
                                          daemon=True)
        self._watchdog.start()

    # -- jobs ------------------------------------------------------------------------------------------------

    def job_heartbeat(self) -> None:
        """Write device status and daemon state for the CLI."""
        assert self.writer is not None
        self.writer.call(self._write_heartbeat_rows)

    def job_rollup_scans(self) -> None:
        """Aggregate scan windows that have closed."""
        assert self.writer is not None
        runtime = self.config.runtime
        closed_until = time.time() - runtime.rollup_lateness_s
        self.writer.call(lambda conn: rollup.rollup_scans(conn, closed_until, runtime.rollup_window_s))

    def job_retention(self) -> None:
        """Delete rows older than their table's retention."""
        assert self.writer is not None
        days = {table: self.config.storage.retention.days_for(table) for table in retention.TIME_COLUMNS}
        deleted = self.writer.call(lambda conn: retention.prune(conn, days, time.time()))
        if any(deleted.values()):
            logger.info("Retention deleted %s", ", ".join(f"{t}: {n}" for t, n in deleted.items() if n))

    # -- helpers ---------------------------------------------------------------------------------------------

    def _write_heartbeat_rows(self, conn: sqlite3.Connection) -> None:
        assert self.writer is not None
        writer_stats = asdict(self.writer.stats)
        writer_stats["queue_depth"] = self.writer.queue_depth
        state.upsert_devices(conn, [monitor.snapshot() for monitor in self.monitors.values()])
        state.put_state(conn, {"heartbeat_at": time.time(), "writer": writer_stats})

    def _progress_ok(self, max_age_s: float) -> bool:
        now = time.monotonic()
        beats = [monitor.beat_at for monitor in self.monitors.values()]
        if self.writer is not None:
            beats.append(self.writer.stats.beat_at)
        if self.scheduler is not None:
            beats.append(self.scheduler.beat_at)
        return all(now - beat < max_age_s for beat in beats)

    def _watchdog_loop(self, interval: float) -> None:
        max_age = max(3 * self.config.runtime.heartbeat_s, 10.0)
        stalled = False
        while not self.stop_event.wait(interval):
            if self._progress_ok(max_age):
                notify("WATCHDOG=1")
                stalled = False
            elif not stalled:
                stalled = True
                logger.error("A worker thread made no progress for %.0f s; withholding the watchdog ping", max_age)
