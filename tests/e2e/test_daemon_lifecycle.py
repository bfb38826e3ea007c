"""The daemon process: systemd notify handshake, watchdog pings, disk floor shedding, bad config exit codes."""

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner
from tests.e2e.conftest import Daemon, edge_command, wait_for

EAN13 = SimScan(aim="]E0", payload="5901234123457", valid=True, kind="gtin", gtin="05901234123457")


def _scanner_section(link: Path) -> str:
    return f"""
[[devices]]
type = "barcode"
name = "till-1"
port = "{link}"
reconnect_max_s = 0.5
"""


def test_daemon__notifies_ready_then_feeds_the_watchdog(tmp_path: Path, daemon: Callable[[str], Daemon]) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(15)
    edge = daemon(_scanner_section(tmp_path / "absent-scanner"))
    os.environ["NOTIFY_SOCKET"] = address
    os.environ["WATCHDOG_USEC"] = "2000000"  # ping every second
    try:
        edge.start()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    messages: list[str] = []
    try:
        while sum(m == "WATCHDOG=1" for m in messages) < 2:
            messages.append(sock.recv(4096).decode())
        assert edge.stop() == 0
        messages.append(sock.recv(4096).decode())
    finally:
        sock.close()
    ready = next(i for i, m in enumerate(messages) if m.startswith("READY=1"))
    first_ping = messages.index("WATCHDOG=1")
    assert ready < first_ping, "READY=1 comes first, once the store is open and the drivers started"
    assert messages[-1] == "STOPPING=1"
    # A scanner that is missing does not stop the daemon from being ready or healthy enough to ping.
    assert edge.device("till-1")["state"] == "unavailable"


def test_daemon__disk_below_floor_sheds_raw_scans_and_reports_it(
    tmp_path: Path, daemon: Callable[[str], Daemon]
) -> None:
    link = tmp_path / "scanner"
    scanner = PtyScanner(link)
    scanner.start()
    edge = daemon(_scanner_section(link))
    # A floor far above the free space on this machine puts the daemon in low-disk mode from the start.
    edge.config.write_text(edge.config.read_text().replace("min_free_disk_mb = 0", "min_free_disk_mb = 100000000"))
    edge.start()
    try:
        assert scanner.wait_for_reader(timeout=20)
        for _ in range(5):
            scanner.send(EAN13)
        wait_for(lambda: edge.status().get("storage", {}).get("shed_low_disk", 0) >= 5, 15, "shed scans in status")
        status = edge.status()
        result = subprocess.run(edge_command("status", "--config", str(edge.config)), capture_output=True, text=True,
                                check=False)
    finally:
        assert edge.stop() == 0
        scanner.stop()
    assert status["storage"]["disk_low"] is True
    assert status["storage"]["rows"]["scans"] == 0
    assert status["degraded"] is True
    assert any("free disk below the floor" in p for p in status["problems"])
    assert result.returncode == 1
    assert "DISK LOW" in result.stdout
    # The daemon kept running its jobs (aggregates and status are still written).
    assert all(job["ok"] for job in status["scheduler"])


def test_daemon__config_error_names_the_key_and_exits_non_zero(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('store_id = "s1"\n[[devices]]\ntype = "barcode"\nname = "till-1"\nport = "/x"\nbaud = 9600\n')
    started = time.monotonic()
    result = subprocess.run(edge_command("run", "--config", str(config)), capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    assert "devices[0].baud: unknown key" in result.stderr
    assert time.monotonic() - started < 30
