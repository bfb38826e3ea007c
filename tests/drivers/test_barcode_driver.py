"""The barcode driver on real ports: a pty scanner (hot-unplug, garbage, partial frames) and a socket:// scanner."""

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.barcode.config import BarcodeConfig
from drivers.barcode.driver import BarcodeDriver
from edge.driver import DriverContext
from edge.events import Scan
from edge.health import DeviceMonitor
from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner
from tests.drivers.helpers import Collect, wait_for

EAN13 = SimScan(aim="]E0", payload="5901234123457", valid=True, kind="gtin", gtin="05901234123457")
GS1 = SimScan(aim="]C1", payload="0109501101020917172505311" + "0ABC123\x1d21S42", valid=True, kind="gs1",
              gtin="09501101020917")


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[PtyScanner]:
    sim = PtyScanner(tmp_path / "usb-scanner")
    sim.start()
    yield sim
    sim.stop()


def _driver(port: str, **settings: object) -> tuple[BarcodeDriver, Collect, DeviceMonitor]:
    config = BarcodeConfig.model_validate({"type": "barcode", "name": "till-1", "port": port,
                                           "reconnect_max_s": 0.5, **settings})
    sink = Collect()
    monitor = DeviceMonitor(name="till-1", kind="barcode")
    return BarcodeDriver(config, DriverContext(monitor, sink)), sink, monitor


def test_barcode_driver__constructor_does_no_io(tmp_path: Path) -> None:
    driver, _, monitor = _driver(str(tmp_path / "absent"))
    assert monitor.state == "unavailable"
    assert monitor.reason == "starting"
    driver.stop()  # stop before start is harmless


def test_barcode_driver__emits_decoded_scans_from_the_pty(scanner: PtyScanner) -> None:
    driver, sink, monitor = _driver(str(scanner.link))
    driver.start()
    try:
        assert scanner.wait_for_reader(timeout=5)
        scanner.send(EAN13)
        scanner.send(GS1)
        wait_for(lambda: len(sink.of(Scan)) == 2)
    finally:
        driver.stop()
    first, second = sink.of(Scan)
    assert (first.symbology, first.gtin, first.valid) == ("]E0", "05901234123457", True)
    assert (second.kind, second.gtin) == ("gs1", "09501101020917")
    assert monitor.state == "ok"
    assert monitor.events == 2


def test_barcode_driver__reopens_within_5_s_of_replug_and_drops_the_partial_frame(scanner: PtyScanner) -> None:
    driver, sink, monitor = _driver(str(scanner.link))
    driver.start()
    try:
        assert scanner.wait_for_reader(timeout=5)
        scanner.send(EAN13)
        wait_for(lambda: len(sink.of(Scan)) == 1)
        # Half a scan, then the cable is pulled: the half must never become a scan.
        scanner.send_raw(b"]E0590123")
        scanner.unplug(drain_timeout=2)
        wait_for(lambda: monitor.state == "unavailable")
        time.sleep(1.0)  # stay unplugged long enough for the backoff to reach its cap
        scanner.replug()
        reopened_after = wait_for(lambda: monitor.state == "ok", timeout=10)
        assert reopened_after < 5.0
        assert scanner.wait_for_reader(timeout=5)
        scanner.send(EAN13)
        wait_for(lambda: len(sink.of(Scan)) == 2)
    finally:
        driver.stop()
    assert [s.text for s in sink.of(Scan)] == ["5901234123457", "5901234123457"]
    assert monitor.reconnects == 1


def test_barcode_driver__garbage_and_overlong_lines_are_counted_and_bounded(scanner: PtyScanner) -> None:
    driver, sink, monitor = _driver(str(scanner.link), max_frame_bytes=64)
    driver.start()
    try:
        assert scanner.wait_for_reader(timeout=5)
        scanner.send_raw(b"\x00\xff\x13noise\r" + b"9" * 500 + b"\r")
        scanner.send(EAN13)
        wait_for(lambda: any(s.valid for s in sink.of(Scan)))
    finally:
        driver.stop()
    valid = [s for s in sink.of(Scan) if s.valid]
    assert [s.text for s in valid] == ["5901234123457"]
    assert all(len(s.text) <= 64 * 4 for s in sink.of(Scan)), "nothing unbounded reaches the store"
    assert monitor.counters["overlong_frames"] == 1
    garbage = [s for s in sink.of(Scan) if not s.valid]
    assert len(garbage) == 1 and garbage[0].error == "non-printable bytes"


def test_barcode_driver__reads_a_network_scanner_over_socket_url() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    opened = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        # pyserial flushes input when it opens a port, so a scanner's bytes only count once the port is open.
        opened.wait(10)
        conn.sendall(b"]E05901234123457\r]E40012345" + b"7\r")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    driver, sink, monitor = _driver(f"socket://127.0.0.1:{port}")
    driver.start()
    try:
        wait_for(lambda: monitor.state == "ok")
        opened.set()
        wait_for(lambda: len(sink.of(Scan)) == 2)
    finally:
        driver.stop()
        for conn in accepted:
            conn.close()
        server.close()
    assert [(s.symbology, s.valid) for s in sink.of(Scan)] == [("]E0", True), ("]E4", True)]
    assert monitor.state == "ok"


def test_barcode_driver__missing_port_is_unavailable_not_fatal(tmp_path: Path) -> None:
    driver, _, monitor = _driver(str(tmp_path / "never-plugged"))
    driver.start()
    try:
        wait_for(lambda: monitor.state == "unavailable" and monitor.reason != "starting")
        assert "cannot open" in (monitor.reason or "")
    finally:
        driver.stop()


def test_barcode_driver__scans_carry_the_context_clock(scanner: PtyScanner) -> None:
    """A simulated store day runs an accelerated clock: scan event times come from the context, not the wall."""
    config = BarcodeConfig.model_validate({"type": "barcode", "name": "till-1", "port": str(scanner.link)})
    sink, monitor = Collect(), DeviceMonitor(name="till-1", kind="barcode")
    started = time.time()
    store_day = 1_795_334_400.0  # 2026-11-22 08:00 in the store's day, replayed 600x

    def accelerated() -> float:
        return store_day + (time.time() - started) * 600

    driver = BarcodeDriver(config, DriverContext(monitor, sink, clock=accelerated))
    driver.start()
    try:
        assert scanner.wait_for_reader(timeout=5)
        scanner.send(EAN13)
        wait_for(lambda: len(sink.of(Scan)) == 1)
        wall_elapsed = time.time() - started
    finally:
        driver.stop()
    ts = sink.of(Scan)[0].ts
    assert store_day <= ts <= store_day + wall_elapsed * 600 + 1
