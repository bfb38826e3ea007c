"""The sniffer driver on real inputs: a simulated pcap replay, a UDP node feed, a pty node, and clear errors."""

import socket
import sqlite3
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.wifi_probe.config import WifiProbeConfig
from drivers.wifi_probe.driver import WifiProbeDriver
from edge.app import WriterSink
from edge.driver import DriverContext
from edge.events import Sighting
from edge.health import DeviceMonitor
from edge.privacy import Hasher
from simulators.wifi import default_world, node_lines, simulate, write_pcap, write_pcapng
from simulators.wifi.feed import PtyNode, stream_udp
from tests.conftest import MakeWriter
from tests.drivers.helpers import Collect, wait_for

START = 1_795_420_800.0


@pytest.fixture(scope="module")
def simulation():  # type: ignore[no-untyped-def]
    return simulate(default_world(), start_ts=START, duration_s=600, seed=5)


def _driver(settings: dict[str, object], hasher: Hasher) -> tuple[WifiProbeDriver, Collect, DeviceMonitor]:
    config = WifiProbeConfig.model_validate({"type": "wifi_probe", "name": "sn-1", **settings})
    sink, monitor = Collect(), DeviceMonitor(name="sn-1", kind="wifi_probe")
    return WifiProbeDriver(config, DriverContext(monitor, sink, hasher)), sink, monitor


@pytest.fixture
def hasher(tmp_path: Path) -> Hasher:
    return Hasher(ZoneInfo("UTC"), "daily", tmp_path / "edge.db.salt")


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_wifi_driver__replays_a_capture_into_hashed_sightings(
    tmp_path: Path, simulation, hasher: Hasher, fmt: str  # type: ignore[no-untyped-def]
) -> None:
    frames = simulation.frames["sn-entrance"]
    path = tmp_path / f"entrance.{fmt}"
    (write_pcap if fmt == "pcap" else write_pcapng)(path, frames)
    driver, sink, monitor = _driver({"source": "pcap", "pcap": str(path)}, hasher)
    driver.start()
    try:
        wait_for(lambda: monitor.details.get("replay") == "finished")
    finally:
        driver.stop()
    sightings = [e for e in sink.events if isinstance(e, Sighting)]
    captures = simulation.captures["sn-entrance"]
    assert len(sightings) == len(captures) == len(frames)
    assert [s.ts for s in sightings] == pytest.approx([c.ts for c in captures])
    assert [s.rssi for s in sightings] == [c.rssi for c in captures]
    macs = {c.mac.replace(":", "") for c in captures}
    assert not any(s.device in macs for s in sightings), "ids are hashes, never the MAC"
    assert all(s.oui is None for s in sightings if s.randomized)
    assert monitor.state == "ok" and monitor.counters["probes"] == len(frames)


def test_wifi_driver__a_file_that_is_not_a_capture_is_unavailable_with_a_reason(
    tmp_path: Path, hasher: Hasher
) -> None:
    path = tmp_path / "broken.pcap"
    path.write_bytes(b"this is not a capture file at all" * 10)
    driver, _, monitor = _driver({"source": "pcap", "pcap": str(path)}, hasher)
    driver.start()
    try:
        wait_for(lambda: monitor.reason not in (None, "starting"))
    finally:
        driver.stop()
    assert monitor.state == "unavailable" and "not a pcap" in (monitor.reason or "")


def test_wifi_driver__receives_a_sniffer_node_over_udp(simulation, hasher: Hasher) -> None:  # type: ignore[no-untyped-def]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    driver, sink, monitor = _driver({"source": "udp", "listen": f"127.0.0.1:{port}"}, hasher)
    driver.start()
    lines = list(node_lines(simulation.captures["sn-middle"][:200], "sn-1"))
    try:
        wait_for(lambda: monitor.state == "ok")
        stream_udp([b"{not json}", *lines], "127.0.0.1", port)
        wait_for(lambda: len(sink.events) == len(lines))
    finally:
        driver.stop()
    assert monitor.counters["malformed"] >= 1, "the bad line is counted and skipped"
    sightings = [e for e in sink.events if isinstance(e, Sighting)]
    assert [s.ts for s in sightings] == pytest.approx([c.ts for c in simulation.captures["sn-middle"][:200]])


def test_wifi_driver__reads_a_serial_node_on_a_pty(tmp_path: Path, simulation, hasher: Hasher) -> None:  # type: ignore[no-untyped-def]
    node = PtyNode(tmp_path / "sniffer-node")
    node.start()
    driver, sink, monitor = _driver({"source": "serial", "port": str(tmp_path / "sniffer-node")}, hasher)
    driver.start()
    lines = list(node_lines(simulation.captures["sn-back"][:100], "sn-1"))
    try:
        wait_for(lambda: monitor.state == "ok")
        time.sleep(0.3)  # pyserial flushes input when it opens the port; write after that
        node.write(lines)
        wait_for(lambda: len(sink.events) == len(lines))
    finally:
        driver.stop()
        node.stop()
    assert all(isinstance(e, Sighting) for e in sink.events)


def test_wifi_driver__missing_or_non_monitor_interface_is_explained(hasher: Hasher) -> None:
    for interface, expected in (("wlan-nope9", "does not exist"), ("lo", "not in monitor mode")):
        driver, _, monitor = _driver({"source": "monitor", "interface": interface}, hasher)
        driver.start()
        try:
            wait_for(lambda: monitor.reason not in (None, "starting"))  # noqa: B023
        finally:
            driver.stop()
        assert monitor.state == "unavailable" and expected in (monitor.reason or ""), monitor.reason


def test_wifi_driver__a_replay_waits_for_a_full_store_queue_instead_of_dropping_frames(
    tmp_path: Path, simulation, hasher: Hasher, fresh_db: Path, make_writer: MakeWriter  # type: ignore[no-untyped-def]
) -> None:
    frames = [f for name in ("sn-entrance", "sn-middle", "sn-back") for f in simulation.frames[name]]
    path = tmp_path / "store.pcap"
    write_pcap(path, sorted(frames, key=lambda f: f[0]))
    # A queue far smaller than the file, written in small batches: as fast as possible, the replay outruns it.
    writer = make_writer(fresh_db, queue_size=200, batch_size=20)
    config = WifiProbeConfig.model_validate({"type": "wifi_probe", "name": "sn-1", "source": "pcap",
                                             "pcap": str(path)})
    monitor = DeviceMonitor(name="sn-1", kind="wifi_probe")
    driver = WifiProbeDriver(config, DriverContext(monitor, WriterSink(writer), hasher))
    driver.start()
    try:
        wait_for(lambda: monitor.details.get("replay") == "finished")
    finally:
        driver.stop()
    writer.stop()
    assert len(frames) > 5 * 200
    assert writer.stats.dropped_queue_full == 0 and monitor.counters["dropped_queue_full"] == 0
    with sqlite3.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM sightings").fetchone()[0] == len(frames)
