"""The pty barcode scanner simulator, read through a real pty with real pyserial."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner, ScannerUnpluggedError

SCANS = (
    SimScan(aim="]E0", payload="5901234123457", valid=True, kind="gtin", gtin="05901234123457"),
    SimScan(
        aim="]C1",
        payload="0105901234123457\x1d10ABC123\x1d3103001250",
        valid=True,
        kind="gs1",
        gtin="05901234123457",
        weight_g=1250,
    ),
    SimScan(aim="]E0", payload="5901234123458", valid=False, kind="gtin"),
    SimScan(aim="", payload="HELLO-123", valid=True, kind="other"),
)


def open_reader(link: Path) -> serial.Serial:
    """Open the scanner the way the daemon does."""
    return serial.serial_for_url(str(link), baudrate=115200, timeout=0.2, exclusive=True)


def read_frame(port: serial.Serial, terminator: bytes = b"\r", within_s: float = 2.0) -> bytes:
    """Read one terminated frame, failing if it does not arrive in time."""
    deadline = time.monotonic() + within_s
    buf = b""
    while not buf.endswith(terminator):
        assert time.monotonic() < deadline, f"no complete frame, got {buf!r}"
        buf += port.read_until(terminator)
    return buf


def wait_until(predicate: Callable[[], bool], within_s: float = 2.0) -> bool:
    """Poll ``predicate`` until true or the deadline; returns its last value."""
    deadline = time.monotonic() + within_s
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.01)
    return True


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-Sim_Barcode_Scanner_0001-if00"


@pytest.fixture
def scanner(link: Path) -> Iterator[PtyScanner]:
    sim = PtyScanner(link)
    sim.start()
    yield sim
    sim.stop()


def test_pty_scanner__link_points_at_a_pts_slave(scanner: PtyScanner, link: Path) -> None:
    assert link.is_symlink()
    assert os.readlink(link) == scanner.slave_path
    assert str(scanner.slave_path).startswith("/dev/pts/")


def test_pty_scanner__start_replaces_a_stale_link(link: Path) -> None:
    link.parent.mkdir(parents=True)
    link.symlink_to("/dev/pts/does-not-exist")
    sim = PtyScanner(link)
    sim.start()
    try:
        assert os.readlink(link) == sim.slave_path
    finally:
        sim.stop()


def test_pty_scanner__bytes_arrive_exactly_including_gs_and_cr(scanner: PtyScanner, link: Path) -> None:
    with open_reader(link) as port:
        for scan in SCANS:
            scanner.send(scan)
        received = [read_frame(port) for _ in SCANS]
    assert received == [(scan.aim + scan.payload).encode("ascii") + b"\r" for scan in SCANS]
    assert b"\x1d10ABC123\x1d" in received[1]


@pytest.mark.parametrize("terminator", [b"\n", b"\r\n", b"\x03"])
def test_pty_scanner__uses_the_configured_terminator(link: Path, terminator: bytes) -> None:
    sim = PtyScanner(link, terminator=terminator)
    sim.start()
    try:
        with open_reader(link) as port:
            sim.send(SCANS[0])
            assert read_frame(port, terminator) == b"]E05901234123457" + terminator
    finally:
        sim.stop()


def test_pty_scanner__ground_truth_matches_what_was_sent(
    scanner: PtyScanner, link: Path, tmp_path: Path
) -> None:
    before = time.time()
    with open_reader(link) as port:
        for scan in SCANS:
            scanner.send(scan)
        for _ in SCANS:
            read_frame(port)
    truth = scanner.ground_truth
    assert [t.seq for t in truth] == [1, 2, 3, 4]
    assert [(t.aim, t.payload, t.valid, t.kind, t.gtin, t.price_minor, t.weight_g) for t in truth] == [
        (s.aim, s.payload, s.valid, s.kind, s.gtin, s.price_minor, s.weight_g) for s in SCANS
    ]
    assert all(before <= t.wall_time <= time.time() for t in truth)

    out = tmp_path / "truth.jsonl"
    scanner.write_ground_truth(out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["payload"] for row in rows] == [s.payload for s in SCANS]
    assert rows[1]["weight_g"] == 1250
    assert set(rows[0]) == {
        "seq",
        "wall_time",
        "aim",
        "payload",
        "valid",
        "kind",
        "gtin",
        "price_minor",
        "weight_g",
    }


def test_pty_scanner__unplug_raises_on_reader(scanner: PtyScanner, link: Path) -> None:
    with open_reader(link) as port:
        scanner.unplug(drain_timeout=1.0)
        with pytest.raises((serial.SerialException, OSError)):
            port.read(1)
    assert not link.exists()
    assert not link.is_symlink()
    with pytest.raises(serial.SerialException):
        open_reader(link)


def test_pty_scanner__send_while_unplugged_raises_and_is_not_recorded(scanner: PtyScanner) -> None:
    scanner.unplug(drain_timeout=0.1)
    with pytest.raises(ScannerUnpluggedError):
        scanner.send(SCANS[0])
    assert scanner.ground_truth == ()


def test_pty_scanner__replug_same_link_reads_new_scans(scanner: PtyScanner, link: Path) -> None:
    with open_reader(link) as port:
        scanner.send(SCANS[0])
        assert read_frame(port) == b"]E05901234123457\r"
        scanner.unplug(drain_timeout=1.0)
    scanner.replug()
    assert link.is_symlink()
    assert os.readlink(link) == scanner.slave_path
    with open_reader(link) as port:
        scanner.send(SCANS[3])
        assert read_frame(port) == b"HELLO-123\r"
    assert [t.payload for t in scanner.ground_truth] == [SCANS[0].payload, SCANS[3].payload]


def test_pty_scanner__unplug_waits_for_unread_bytes_until_drain_timeout(scanner: PtyScanner) -> None:
    scanner.send(SCANS[1])
    assert wait_until(lambda: scanner.pending_bytes() > 0)
    started = time.monotonic()
    scanner.unplug(drain_timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0
    assert not scanner.plugged


def test_pty_scanner__unplug_returns_promptly_once_reader_drains(scanner: PtyScanner, link: Path) -> None:
    frames: list[bytes] = []
    reader_done = threading.Event()
    port = open_reader(link)

    def read_until_unplugged() -> None:
        try:
            while True:
                frames.append(port.read_until(b"\r"))
        except (serial.SerialException, OSError):
            reader_done.set()

    thread = threading.Thread(target=read_until_unplugged, daemon=True)
    thread.start()
    try:
        for scan in SCANS:
            scanner.send(scan)
        started = time.monotonic()
        scanner.unplug(drain_timeout=5.0)
        elapsed = time.monotonic() - started
        assert reader_done.wait(2.0)
    finally:
        port.close()
    assert elapsed < 1.0
    assert b"".join(frames) == b"".join(scan.frame(b"\r") for scan in SCANS)


def test_pty_scanner__unplug_interrupts_a_send_stuck_on_a_full_pty(scanner: PtyScanner) -> None:
    # 400 kB with nobody reading overflows the pty's buffers, so send() blocks until unplug() pulls the cable.
    big = SimScan(aim="]C0", payload="A" * 4000, valid=True, kind="other")
    interrupted = threading.Event()

    def flood() -> None:
        try:
            for _ in range(100):
                scanner.send(big)
        except ScannerUnpluggedError:
            interrupted.set()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    assert wait_until(lambda: len(scanner.ground_truth) >= 1)
    scanner.unplug(drain_timeout=0.2)
    assert interrupted.wait(2.0)
    thread.join(2.0)
    assert len(scanner.ground_truth) < 100


def test_pty_scanner__run_unplugs_then_replugs_behind_the_same_link(scanner: PtyScanner, link: Path) -> None:
    received: list[bytes] = []
    opens: list[str] = []
    stop_reader = threading.Event()

    def reader() -> None:
        # Behaves like the daemon's driver: read, and on unplug reopen the stable link until it is back.
        while not stop_reader.is_set():
            try:
                with open_reader(link) as port:
                    opens.append(os.readlink(link))
                    while not stop_reader.is_set():
                        received.append(port.read_until(b"\r"))
            except (serial.SerialException, OSError):
                stop_reader.wait(0.02)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    # pyserial flushes input on open, so the first scan must wait until the reader has the port open.
    assert wait_until(lambda: len(opens) == 1)
    try:
        sent = scanner.run(SCANS, rate_per_s=50.0, unplug_at=2, unplugged_s=0.3)
        assert sent == len(SCANS)
        assert wait_until(lambda: b"".join(received).count(b"\r") == len(SCANS))
    finally:
        stop_reader.set()
        thread.join(2.0)
    assert len(opens) == 2
    assert b"".join(received) == b"".join(scan.frame(b"\r") for scan in SCANS)
    assert [t.seq for t in scanner.ground_truth] == [1, 2, 3, 4]


def test_pty_scanner__reader_opened_turns_true_when_a_reader_opens(scanner: PtyScanner, link: Path) -> None:
    assert not scanner.reader_opened()
    with open_reader(link):
        assert wait_until(scanner.reader_opened)
    scanner.unplug(drain_timeout=0.1)
    scanner.replug()
    assert not scanner.reader_opened()


def test_pty_scanner__wait_for_reader_times_out_without_one(scanner: PtyScanner) -> None:
    started = time.monotonic()
    assert not scanner.wait_for_reader(timeout=0.2)
    assert time.monotonic() - started >= 0.2


def test_pty_scanner__run_waits_for_a_reader_before_typing(scanner: PtyScanner, link: Path) -> None:
    # Were the first scan typed before the reader opened, pyserial's flush on open would swallow it.
    stop = threading.Event()
    thread = threading.Thread(target=scanner.run, args=(SCANS, 100.0, stop), daemon=True)
    thread.start()
    try:
        assert not wait_until(lambda: len(scanner.ground_truth) > 0, within_s=0.2)
        with open_reader(link) as port:
            received = [read_frame(port) for _ in SCANS]
        thread.join(2.0)
        assert not thread.is_alive()
    finally:
        stop.set()
    assert received == [scan.frame(b"\r") for scan in SCANS]


def test_pty_scanner__run_stops_when_the_stop_event_is_set(scanner: PtyScanner) -> None:
    stop = threading.Event()
    stop.set()
    assert scanner.run(SCANS, rate_per_s=1.0, stop=stop) == 0
    assert scanner.ground_truth == ()


def test_pty_scanner__stop_twice_is_harmless(link: Path) -> None:
    sim = PtyScanner(link)
    sim.start()
    sim.stop()
    sim.stop()
    assert not link.is_symlink()
    assert not sim.plugged


def test_pty_scanner__stop_after_unplug_is_harmless(scanner: PtyScanner, link: Path) -> None:
    scanner.unplug(drain_timeout=0.1)
    scanner.stop()
    assert not link.is_symlink()


def start_cli(link: Path, truth: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start ``python -m simulators.barcode`` on ``link``."""
    pytest.importorskip("simulators.barcode.codes")
    argv = [sys.executable, "-m", "simulators.barcode", "--link", str(link), "--truth", str(truth), *extra]
    return subprocess.Popen(argv, stderr=subprocess.PIPE)


def test_pty_scanner_cli__types_count_scans_and_writes_matching_truth(link: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    proc = start_cli(link, truth, "--count", "5", "--rate", "50", "--seed", "7", "--terminator", "0x03")
    try:
        assert wait_until(link.is_symlink, within_s=10.0)
        with open_reader(link) as port:
            frames = [read_frame(port, b"\x03") for _ in range(5)]
        assert proc.wait(10.0) == 0
    finally:
        proc.kill()
        proc.wait()
    rows = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines()]
    assert [(row["aim"] + row["payload"]).encode("ascii") + b"\x03" for row in rows] == frames
    assert not link.is_symlink()


def test_pty_scanner_cli__sigterm_stops_and_still_writes_truth(link: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    proc = start_cli(link, truth, "--rate", "50")
    try:
        assert wait_until(link.is_symlink, within_s=10.0)
        with open_reader(link) as port:
            read_frame(port)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10.0) == 0
    finally:
        proc.kill()
        proc.wait()
    assert len(truth.read_text(encoding="utf-8").splitlines()) >= 1
    assert not link.is_symlink()
