"""The daemon's lifecycle: a flat list of init/start steps, the same in reverse on stop, and config reload."""

import logging
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from drivers import registry
from edge import __version__
from edge.config.base import DeviceConfig
from edge.config.loader import load_config
from edge.config.models import EdgeConfig
from edge.driver import Driver, DriverContext, EventSink
from edge.errors import ConfigError
from edge.events import Event
from edge.health import DeviceMonitor
from edge.jobs import Jobs
from edge.privacy import Hasher
from edge.scheduler import Scheduler
from edge.store import db, state
from edge.store.writer import Writer
from edge.systemd import notify, watchdog_interval_s

if TYPE_CHECKING:
    from sync.commands import CommandRouter
    from sync.handlers import Handler
    from sync.uplink import Uplink

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class WriterSink(EventSink):
    """Drivers' events into the store writer's queue."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def submit(self, event: Event) -> bool:
        return self._writer.submit(event)

    def has_room(self) -> bool:
        return self._writer.has_room()


class App:
    """One running daemon: store, drivers, scheduler, sync and the systemd handshake."""

    def __init__(self, config: EdgeConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.stop_event = threading.Event()
        self.started_at = time.time()
        self.writer: Writer | None = None
        self.scheduler: Scheduler | None = None
        self.jobs: Jobs | None = None
        self.hasher: Hasher | None = None
        self.uplink: Uplink | None = None
        self.router: CommandRouter | None = None
        self.monitors: dict[str, DeviceMonitor] = {}
        self.drivers: dict[str, Driver] = {}
        self._devices_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the daemon up, then tell systemd it is ready."""
        self.check_drivers(self.config)
        self.init_store()
        self.start_writer()
        self.init_privacy()
        self.start_drivers()
        self.start_scheduler()
        self.start_sync()
        self.start_watchdog()
        notify(f"READY=1\nSTATUS=running {len(self.drivers)} device(s)")
        logger.info("StoreEdge %s running for store %s with %d device(s)%s", __version__, self.config.store_id,
                    len(self.drivers), ", syncing to HQ" if self.uplink else "")

    def stop(self) -> None:
        """Stop in reverse order and flush the writer; safe to call twice."""
        notify("STOPPING=1")
        self.stop_event.set()
        if self.uplink is not None:
            self.uplink.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        with self._devices_lock:
            for driver in reversed(list(self.drivers.values())):
                driver.stop()
        if self.writer is not None and self.jobs is not None:
            try:
                self.writer.call(self.jobs.write_heartbeat_rows, timeout=STOP_TIMEOUT_S / 2)
                self.writer.call(lambda conn: state.put_state(conn, {"stopped_at": time.time()}))
            except Exception as err:
                logger.error("Final status write failed: %s", err)
        if self.writer is not None:
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

    @staticmethod
    def check_drivers(config: EdgeConfig) -> None:
        """Import every enabled device's driver now, so a missing library is a config error at start."""
        for device in config.enabled_devices():
            registry.driver_class(device.type)

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
        sync = self.config.sync
        self.writer.call(lambda conn: state.prune_devices(conn, names))
        self.writer.call(lambda conn: state.put_state(conn, {
            "started_at": self.started_at, "pid": os.getpid(), "version": __version__,
            "store_id": self.config.store_id, "config_path": str(self.config_path or ""),
            "heartbeat_s": self.config.runtime.heartbeat_s, "stopped_at": None,
            "sync": {"enabled": sync.enabled, "broker": sync.broker, "backlog_alarm_s": sync.backlog_alarm_s,
                     "replay_rate_per_s": sync.replay_rate_per_s},
        }))

    def init_privacy(self) -> None:
        """The device-id hasher all sniffers share; its salt file sits next to the database, rotating at midnight."""
        path = self.config.storage.path
        self.hasher = Hasher(ZoneInfo(self.config.timezone), self.config.privacy.salt_rotation,
                             path.with_name(path.name + ".salt"))

    def start_drivers(self) -> None:
        """Start every enabled device; a device that cannot open retries in the background."""
        for device in self.config.enabled_devices():
            self._start_device(device)

    def start_scheduler(self) -> None:
        """Start the scheduler with every job the daemon runs."""
        assert self.writer is not None
        self.jobs = Jobs(self.config, self.writer, lambda: list(self.monitors.values()), self._extra_state,
                         self.started_at, salt_period=self._salt_period)
        self.scheduler = Scheduler(self.jobs.declare(), self.writer)
        self.scheduler.start()

    def start_sync(self) -> None:
        """Start the MQTT uplink and the command router when sync is enabled."""
        sync = self.config.sync
        if not sync.enabled:
            return
        assert self.writer is not None
        # Imported here: the app is the one place where edge wires in the sync package.
        from sync.commands import CommandRouter
        from sync.topics import Topics
        from sync.uplink import Uplink

        topics = Topics(sync.topic_prefix, self.config.store_id)
        self.router = CommandRouter(self.config.store_id, topics, self.writer, self._command_handlers(),
                                    sync.max_command_bytes)
        self.uplink = Uplink(sync, self.config.store_id, __version__, self.writer, self.config.storage.path,
                             on_command=self.router.handle)
        self.uplink.start()

    def _command_handlers(self) -> "dict[str, Handler]":
        """The daemon's own commands plus those of every driver that takes commands."""
        from sync.commands import config_reload_handler, driver_handlers, merge_handlers, ping_handler

        builtins = {"ping": ping_handler(__version__, self.started_at),
                    "config/reload": config_reload_handler(self.reload_config)}
        return merge_handlers(builtins, driver_handlers(list(self.drivers.values())))

    def start_watchdog(self) -> None:
        """Ping the systemd watchdog while every worker thread shows recent progress."""
        interval = watchdog_interval_s()
        if interval is None:
            return
        self._watchdog = threading.Thread(target=self._watchdog_loop, args=(interval,), name="watchdog",
                                          daemon=True)
        self._watchdog.start()

    # -- config reload (the `config/reload` command) ----------------------------------------------------------

    def reload_config(self) -> dict[str, Any]:
        """Re-read the config file; restart changed devices; report sections that need a daemon restart."""
        if self.config_path is None:
            raise ConfigError("the daemon was started without a config file")
        new = load_config(self.config_path)
        self.check_drivers(new)
        if new.store_id != self.config.store_id:
            raise ConfigError(f"store_id changed ({self.config.store_id} → {new.store_id}); restart the daemon")
        old_devices = {d.name: d for d in self.config.enabled_devices()}
        new_devices = {d.name: d for d in new.enabled_devices()}
        stopped = sorted(n for n in old_devices if new_devices.get(n) != old_devices[n])
        started = sorted(n for n in new_devices if old_devices.get(n) != new_devices[n])
        with self._devices_lock:
            for name in stopped:
                self.drivers.pop(name).stop()
                self.monitors.pop(name, None)
        for name in started:
            self._start_device(new_devices[name])
        restart = sorted(
            section for section in ("storage", "sync", "runtime", "privacy")
            if getattr(new, section) != getattr(self.config, section)
        )
        self.config = new
        if self.router is not None:
            self.router.set_handlers(self._command_handlers())  # the new drivers' commands
        logger.info("Config reloaded: started %s, stopped %s, restart needed for %s", started, stopped, restart)
        return {"devices_started": started, "devices_stopped": stopped, "restart_required_for": restart}

    # -- helpers ---------------------------------------------------------------------------------------------

    def _start_device(self, device: DeviceConfig) -> None:
        assert self.writer is not None
        monitor = DeviceMonitor(name=device.name, kind=device.type)
        context = DriverContext(monitor, WriterSink(self.writer), self.hasher, self.writer, self._clock)
        driver = registry.driver_class(device.type)(device, context)
        with self._devices_lock:
            self.monitors[device.name] = monitor
            self.drivers[device.name] = driver
        driver.start()

    def _clock(self) -> float:
        """Event time for live input: the wall clock, or the accelerated clock of a simulated store day."""
        simulated = self.config.runtime.simulated_clock
        if simulated is None:
            return time.time()
        anchor = simulated.anchor if simulated.anchor is not None else self.started_at
        return simulated.start.timestamp() + (time.time() - anchor) * simulated.speed

    def _salt_period(self) -> float | None:
        start = self.hasher.period[0] if self.hasher is not None else float("-inf")
        return None if start == float("-inf") else start  # no MAC hashed yet

    def _extra_state(self) -> dict[str, object]:
        if self.uplink is None:
            return {}
        return {"uplink": asdict(self.uplink.stats)}

    def _progress_ok(self, max_age_s: float) -> bool:
        now = time.monotonic()
        beats = [monitor.beat_at for monitor in list(self.monitors.values())]
        if self.writer is not None:
            beats.append(self.writer.stats.beat_at)
        if self.scheduler is not None:
            beats.append(self.scheduler.beat_at)
        if self.uplink is not None:
            beats.append(self.uplink.beat_at)
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
