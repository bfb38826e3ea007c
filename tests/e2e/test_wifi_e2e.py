"""End to end: the daemon replays simulated sniffer captures, rolls up presence/visits/zones, syncs them to HQ, and
no simulated MAC appears anywhere: database bytes, salt file, logs, published payloads, CLI output."""

import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.broker import Broker
from simulators.wifi import default_world, simulate, write_pcap
from sync.hq.receiver import Receiver, ReceiverSettings
from tests.e2e.conftest import Daemon, edge_command, wait_for

# Replayed capture time: event time drives every window, whatever the wall clock. Yesterday's hour boundary, so the
# raw-row retention (7 days by event time) never deletes the capture before it is rolled up, whenever this runs.
START = (time.time() // 3600 - 24) * 3600


def _mac_forms(mac: str) -> list[bytes]:
    bare = mac.replace(":", "").lower()
    forms = {mac.lower(), mac.upper(), mac.replace(":", "-").lower(), mac.replace(":", "-").upper(), bare,
             bare.upper()}
    return [form.encode() for form in forms]


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[tuple[list[Path], set[str]]]:
    simulation = simulate(default_world(), start_ts=START, duration_s=1200, seed=9)
    paths = []
    for name, frames in simulation.frames.items():
        path = tmp_path / f"{name}.pcap"
        write_pcap(path, frames)
        paths.append(path)
    yield paths, set(simulation.truth.all_macs())


def test_wifi__replayed_store_is_aggregated_synced_and_no_mac_leaks(
    tmp_path: Path, daemon: Callable[[str], Daemon], capture: tuple[list[Path], set[str]]
) -> None:
    paths, macs = capture
    broker = Broker(tmp_path / "broker")
    broker.start()
    receiver = Receiver(ReceiverSettings(broker=broker.url, db_path=tmp_path / "hq.db", client_id="hq-wifi",
                                         session_expiry_s=600, group=""))
    receiver.start()
    published: list[bytes] = []
    sniffers = "".join(f"""
[[devices]]
type = "wifi_probe"
name = "{path.stem}"
source = "pcap"
pcap = "{path}"
zone = "{ {'sn-entrance': 'entrance', 'sn-middle': 'aisles', 'sn-back': 'fresh'}[path.stem] }"
""" for path in paths)
    edge = daemon(f"""
[floor_plan]
width_m = 24.0
depth_m = 16.0
zones = [
  {{ name = "entrance", polygon = [[0, 0], [6, 0], [6, 4], [0, 4]] }},
  {{ name = "fresh", polygon = [[6, 0], [24, 0], [24, 8], [6, 8]] }},
  {{ name = "aisles", polygon = [[0, 4], [6, 4], [6, 8], [24, 8], [24, 13], [0, 13]] }},
  {{ name = "checkout", polygon = [[0, 13], [24, 13], [24, 16], [0, 16]] }},
]
[sync]
enabled = true
broker = "{broker.url}"
batch_window_s = 300
{sniffers}""")
    edge.start()
    hq = tmp_path / "hq.db"
    try:
        assert receiver.wait_subscribed(10)
        wait_for(lambda: _hq_kinds(hq) >= {"presence", "zones"}, 60, "presence and zones at HQ")
        cli = [subprocess.run(edge_command(*args, "--config", str(edge.config)), capture_output=True, text=True,
                              check=False).stdout for args in (("status",), ("devices",), ("outbox", "--json"))]
    finally:
        assert edge.stop() == 0
        receiver.stop()
        broker.stop()
    conn = sqlite3.connect(edge.db)
    presence = conn.execute("SELECT count(*), sum(frames), max(persons_estimate) FROM agg_presence").fetchone()
    sightings = conn.execute("SELECT count(*) FROM sightings").fetchone()[0]
    conn.close()
    assert sightings > 1000 and presence[0] >= 10 and presence[2] > 0
    published = [row[0].encode() for row in sqlite3.connect(hq).execute("SELECT payload_json FROM messages")]
    # Privacy: every form of every MAC the simulated phones used, searched in everything the gateway wrote.
    haystacks = {
        "database": b"".join(p.read_bytes() for p in edge.db.parent.glob("edge.db*")),
        "log": edge.log.read_bytes(),
        "payloads": b"\n".join(published),
        "cli": "\n".join(cli).encode(),
    }
    assert haystacks["payloads"] and haystacks["log"]
    for where, data in haystacks.items():
        lowered = data.lower()
        leaked = [mac for mac in macs if any(form.lower() in lowered for form in _mac_forms(mac))]
        assert not leaked, f"raw MACs found in the {where}: {leaked[:3]}"
    assert re.search(rb"[0-9a-f]{16}", haystacks["database"]), "hashed ids are stored"


def _hq_kinds(hq: Path) -> set[str]:
    if not hq.exists():
        return set()
    try:
        return {row[0] for row in sqlite3.connect(hq).execute("SELECT DISTINCT kind FROM messages")}
    except sqlite3.OperationalError:
        return set()



def test_wifi_analyze__windows_of_a_capture_without_any_mac(capture: tuple[list[Path], set[str]]) -> None:
    paths, macs = capture
    out = subprocess.run(edge_command("wifi", "analyze", str(paths[0]), "--window", "120", "--json"),
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    windows = result["windows"]
    assert len(windows) == 10, "20 simulated minutes in 2-minute windows"
    assert sum(w["frames"] for w in windows) == result["totals"]["probe_requests"] > 0
    assert all({"start", "end", "frames", "devices", "persons_estimate"} <= set(w) for w in windows)
    assert all(w["devices"] <= w["frames"] for w in windows)
    lowered = out.lower().encode()
    assert not [mac for mac in macs if any(form.lower() in lowered for form in _mac_forms(mac))]
