"""End to end: the real daemon reading the pty scanner simulator, through a hot-unplug, and through SIGKILL."""

import random
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from drivers.barcode.config import RcnLayout
from simulators.barcode.codes import random_scan
from simulators.barcode.scanner import PtyScanner
from tests.e2e.conftest import Daemon, wait_for

LAYOUTS = [RcnLayout(name="cn-13", pattern="2IIIIIIPPPPPC"), RcnLayout(name="cn-18", pattern="26IIIIIPPPPPWWWWWC")]


def _device_section(link: Path) -> str:
    return f"""
[[devices]]
type = "barcode"
name = "till-1"
port = "{link}"
terminator = "CR"
reconnect_max_s = 0.5
rcn_layouts = [{{ name = "cn-13", pattern = "2IIIIIIPPPPPC" }}, {{ name = "cn-18", pattern = "26IIIIIPPPPPWWWWWC" }}]
"""


def _stored(db: Path) -> list[tuple[int, str, int, str | None, int | None, int | None]]:
    """Every stored scan; empty until the daemon has created the database."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, text, valid, gtin, price_minor, weight_g FROM scans ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []  # the daemon is still migrating a fresh database
    finally:
        conn.close()


def test_daemon__stores_every_scan_once_through_unplug_and_replug(
    tmp_path: Path, daemon: Callable[[str], Daemon]
) -> None:
    link = tmp_path / "by-id-scanner"
    scanner = PtyScanner(link)
    scanner.start()
    edge = daemon(_device_section(link))
    edge.start()
    rng = random.Random(2024)
    # 5% of scans carry a bad check digit; the simulator's ground truth says which.
    scans = [random_scan(rng, bad_share=0.05, rcn_layouts=LAYOUTS) for _ in range(1000)]
    try:
        sent = scanner.run(scans, rate_per_s=400, unplug_at=500, unplugged_s=1.5, reader_timeout_s=20)
        assert sent == 1000
        truth = scanner.ground_truth
        wait_for(lambda: len(_stored(edge.db)) >= len(truth), 20, "every typed scan to be stored")
        wait_for(lambda: edge.device("till-1").get("reconnects", 0) >= 1, 10, "the reconnect in status")
        status = edge.device("till-1")
    finally:
        assert edge.stop() == 0
        scanner.stop()

    rows = _stored(edge.db)
    assert len(rows) == len(truth), "no scan lost, none duplicated, no partial frame stored as a scan"
    stored = Counter((text, bool(valid)) for _, text, valid, *_ in rows)
    expected = Counter((scan.payload, scan.valid) for scan in truth)
    assert stored == expected
    invalid_truth = sum(not scan.valid for scan in truth)
    assert 25 <= invalid_truth <= 80, "the simulator typed about 5% bad check digits"
    # Decoded values match ground truth for every valid scan (GTIN, embedded price and weight).
    decoded = Counter((text, gtin, price, weight) for _, text, valid, gtin, price, weight in rows if valid)
    expected_decoded = Counter((s.payload, s.gtin, s.price_minor, s.weight_g) for s in truth if s.valid)
    assert decoded == expected_decoded
    assert status["state"] == "ok"
    assert status["reconnects"] >= 1
    assert status["counters"].get("invalid_scans") == invalid_truth


def test_daemon__sigkill_keeps_committed_scans_and_resumes(tmp_path: Path, daemon: Callable[[str], Daemon]) -> None:
    link = tmp_path / "scanner"
    scanner = PtyScanner(link)
    scanner.start()
    edge = daemon(_device_section(link))
    edge.start()
    rng = random.Random(7)
    stop = threading.Event()
    typing = threading.Thread(
        target=scanner.run,
        args=((random_scan(rng, bad_share=0.05, rcn_layouts=LAYOUTS) for _ in range(100_000)), 200, stop),
        kwargs={"reader_timeout_s": 20},
    )
    typing.start()
    try:
        wait_for(lambda: len(_stored(edge.db)) >= 300, 30, "scans to be stored before the kill")
        edge.stop(signal.SIGKILL)  # mid-stream, no chance to flush
        stop.set()
        typing.join(timeout=10)
        committed = _stored(edge.db)
        assert len(committed) >= 300

        # Replug around the restart, as a real scanner would hold its data until the host opens the port.
        scanner.unplug(drain_timeout=0.5)
        scanner.replug()
        edge.start()
        assert scanner.wait_for_reader(timeout=20)
        before_new = len(_stored(edge.db))
        new_scans = [random_scan(rng, bad_share=0.0, rcn_layouts=LAYOUTS) for _ in range(50)]
        assert scanner.run(new_scans, rate_per_s=100, reader_timeout_s=20) == 50
        wait_for(lambda: len(_stored(edge.db)) >= before_new + 50, 20, "scanning to resume after restart")
    finally:
        if edge.process is not None:
            assert edge.stop() == 0
        scanner.stop()

    after = _stored(edge.db)
    assert after[: len(committed)] == committed, "every committed scan is intact after SIGKILL"
    assert Counter(text for _, text, *_ in after[before_new:]) == Counter(s.payload for s in new_scans)
    conn = sqlite3.connect(edge.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
