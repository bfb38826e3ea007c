"""The systemd watchdog is fed only while every worker thread shows recent progress."""

import time

from edge.app import App
from edge.config.loader import parse_config
from edge.health import DeviceMonitor


def _app() -> App:
    return App(parse_config('store_id = "s1"\n'))


def test_watchdog__fed_when_every_thread_made_recent_progress() -> None:
    app = _app()
    app.monitors["till-1"] = DeviceMonitor(name="till-1", kind="barcode")
    app.monitors["till-1"].beat()
    assert app._progress_ok(max_age_s=5)


def test_watchdog__withheld_when_one_driver_thread_is_stuck() -> None:
    app = _app()
    healthy = DeviceMonitor(name="till-1", kind="barcode")
    stuck = DeviceMonitor(name="till-2", kind="barcode")
    healthy.beat()
    stuck.beat_at = time.monotonic() - 60  # its reader has not looped for a minute
    app.monitors.update({"till-1": healthy, "till-2": stuck})
    assert not app._progress_ok(max_age_s=5)
