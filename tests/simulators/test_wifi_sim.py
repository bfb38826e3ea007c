"""The Wi-Fi probe simulator: determinism, pcap/pcapng validity via scapy, ground-truth invariants, node feed."""

import itertools
import json
import math
import os
import re
import socket
import statistics
import struct
import threading
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11FCS, Dot11ProbeReq, RadioTap
from scapy.utils import rdpcap

from simulators.wifi import (
    Capture,
    PtyNode,
    Simulation,
    Sniffer,
    World,
    default_world,
    node_lines,
    simulate,
    stream_udp,
    write_pcap,
    write_pcapng,
)
from simulators.wifi.__main__ import main
from simulators.wifi.frames import frequency
from simulators.wifi.world import DEVICE_HEIGHT_M

START = 1795449600.0
HOUR = 3600.0
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@pytest.fixture(scope="module")
def hour() -> Simulation:
    """A store hour with the issue's accuracy scenario: 60% randomizing phones."""
    return simulate(default_world(), START, HOUR, seed=11, randomizing=0.6)


def _locally_administered(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 0x02)


# --- determinism -----------------------------------------------------------------------------------------------


def test_simulate__same_seed_gives_identical_frames_and_truth() -> None:
    a = simulate(default_world(), START, 600.0, seed=7)
    b = simulate(default_world(), START, 600.0, seed=7)
    assert a.captures == b.captures
    assert a.truth.to_dict() == b.truth.to_dict()
    assert sum(len(c) for c in a.captures.values()) > 100


def test_simulate__another_seed_gives_other_traffic() -> None:
    a = simulate(default_world(), START, 600.0, seed=7)
    c = simulate(default_world(), START, 600.0, seed=8)
    assert a.frames != c.frames


def test_simulate__an_hour_of_a_three_sniffer_store_takes_under_ten_seconds() -> None:
    began = time.perf_counter()
    sim = simulate(default_world(), START, HOUR, seed=3)
    assert time.perf_counter() - began < 10.0
    assert len(sim.world.sniffers) == 3


def test_simulate__unknown_or_out_of_range_knobs_are_refused() -> None:
    with pytest.raises(TypeError):
        simulate(default_world(), START, 60.0, seed=1, no_such_knob=1)
    with pytest.raises(ValueError, match="randomizing"):
        simulate(default_world(), START, 60.0, seed=1, randomizing=1.5)


# --- pcap / pcapng read back by scapy --------------------------------------------------------------------------


@pytest.mark.parametrize("fcs", [False, True], ids=["no-fcs", "fcs"])
@pytest.mark.parametrize("fmt", ["pcap", "pcap-ns", "pcapng"])
def test_capture_files__scapy_dissects_the_fields_we_generated(tmp_path: Path, fcs: bool, fmt: str) -> None:
    sim = simulate(default_world(), START, 120.0, seed=5, fcs=fcs)
    for sniffer in sim.world.sniffers:
        caps = sim.captures[sniffer.name]
        path = tmp_path / f"{sniffer.name}.{fmt}"
        if fmt == "pcapng":
            assert write_pcapng(path, sim.frames[sniffer.name]) == len(caps)
        else:
            assert write_pcap(path, sim.frames[sniffer.name], nanosecond=fmt == "pcap-ns") == len(caps)
        packets = rdpcap(str(path))
        assert len(packets) == len(caps) > 20
        for pkt, cap in zip(packets, caps, strict=True):
            assert isinstance(pkt, RadioTap)
            assert abs(float(pkt.time) - cap.ts) < 2e-6
            assert pkt.dBm_AntSignal == cap.rssi
            assert pkt.ChannelFrequency == frequency(cap.channel)
            assert bool(pkt.Flags.FCS) is fcs
            dot11 = pkt[Dot11FCS] if fcs else pkt[Dot11]
            assert (dot11.type, dot11.subtype) == (0, 4)
            assert dot11.addr1 == dot11.addr3 == "ff:ff:ff:ff:ff:ff"
            assert dot11.addr2 == cap.mac
            assert cap.seq == dot11.SC >> 4
            assert pkt.haslayer(Dot11ProbeReq)
            first = pkt[Dot11Elt]
            assert (first.ID, first.len) == (0, cap.ssid_len)
            if fcs:
                mpdu = cap.data[struct.unpack_from("<H", cap.data, 2)[0]:-4]
                assert dot11.fcs == zlib.crc32(mpdu) == struct.unpack("<I", cap.data[-4:])[0]
            if sniffer.antennas == 2:  # extended presence bitmaps: two more words, one per antenna
                assert pkt.present.Ext
                assert len(pkt.Ext) == 2
                chains = struct.unpack("<bBbB", bytes(pkt.notdecoded)[:4])
                assert chains[1::2] == (0, 1)
                assert max(chains[0::2]) <= cap.rssi


def test_frames__5ghz_capable_models_probe_on_5ghz_with_ofdm_rates(tmp_path: Path) -> None:
    world = World(floor=default_world().floor, sniffers=(Sniffer(name="sn-5g", x=12.0, y=8.0, channel=36),))
    sim = simulate(world, START, 300.0, seed=2)
    caps = sim.captures["sn-5g"]
    assert caps
    assert {sim.devices[c.device].model.five_ghz for c in caps} == {True}
    write_pcap(tmp_path / "5g.pcap", sim.frames["sn-5g"])
    pkt = rdpcap(str(tmp_path / "5g.pcap"))[0]
    assert pkt.ChannelFrequency == 5180
    assert pkt[Dot11Elt].getlayer(Dot11Elt, 2).ID == 1  # rates, and no DS parameter set on 5 GHz


# --- ground truth ----------------------------------------------------------------------------------------------


def test_truth__occupancy_is_the_sum_of_people_inside(hour: Simulation) -> None:
    stays = [(v.enter_ts, v.exit_ts) for v in hour.truth.visits if v.enter_ts is not None and v.exit_ts is not None]
    for window in hour.truth.window_list(60):
        span = window.end - window.start
        assert window.person_seconds == pytest.approx(sum(window.zone_person_seconds.values()))
        assert window.occupancy_avg == pytest.approx(window.person_seconds / span)
        # Independently from the visits' door times (sampling error: at most 1 s per person per window edge).
        overlap = sum(max(0.0, min(leave, window.end) - max(enter, window.start)) for enter, leave in stays)
        assert abs(overlap - window.person_seconds) <= 1.0 + window.people_present
        assert window.people_present >= math.floor(window.occupancy_avg)


def test_truth__ten_minute_windows_add_up_the_minutes(hour: Simulation) -> None:
    minutes = hour.truth.window_list(60)
    for ten in hour.truth.window_list(600):
        inside = [m for m in minutes if ten.start <= m.start < ten.end]
        assert len(inside) == 10
        assert ten.person_seconds == pytest.approx(sum(m.person_seconds for m in inside))
        assert ten.people_present >= max(m.people_present for m in inside)
        for zone, seconds in ten.zone_person_seconds.items():
            assert seconds == pytest.approx(sum(m.zone_person_seconds[zone] for m in inside))
    assert sum(hour.truth.zone_totals.values()) == pytest.approx(sum(m.person_seconds for m in minutes))
    assert all(v > 0 for v in hour.truth.zone_totals.values())


def test_truth__every_captured_mac_belongs_to_the_device_that_sent_it(hour: Simulation) -> None:
    owner_of_mac: dict[str, str] = {}
    for device in hour.truth.devices:
        for mac in device.macs:
            assert owner_of_mac.setdefault(mac, device.device) == device.device, "a MAC shared by two devices"
    for caps in hour.captures.values():
        for cap in caps:
            assert owner_of_mac[cap.mac] == cap.device


def test_truth__randomizing_phones_use_many_macs_and_stable_devices_one(hour: Simulation) -> None:
    seen = {d.device for d in hour.truth.devices if d.bursts > 0}
    for device in hour.truth.devices:
        if device.device not in seen:
            continue
        if device.stability == "universal":
            assert len(device.macs) == 1
            assert not _locally_administered(device.macs[0])
            assert bytes.fromhex(device.macs[0].replace(":", ""))[:3] == hour.devices[device.device].model.oui
        else:
            assert all(_locally_administered(m) for m in device.macs)
            if device.randomization == "per_burst":
                assert len(device.macs) == device.bursts
            else:
                assert device.bursts / 5 <= len(device.macs) <= device.bursts
    long_stayers = [d for d in hour.truth.devices if d.stability == "randomizing" and d.bursts >= 20]
    assert long_stayers and min(len(d.macs) for d in long_stayers) >= 4


def test_truth__share_of_randomizing_phones_follows_the_knob(hour: Simulation) -> None:
    phones = [d for d in hour.truth.devices if d.role == "phone"]
    people = [v for v in hour.truth.visits]
    assert len(phones) > 150
    assert sum(d.stability == "randomizing" for d in phones) / len(phones) == pytest.approx(0.6, abs=0.08)
    assert len(phones) / len(people) == pytest.approx(0.9, abs=0.06)


def test_truth__passersby_never_enter_and_shoppers_are_inside_between_door_times(hour: Simulation) -> None:
    world = hour.world
    passersby = [v for v in hour.truth.visits if v.kind == "passerby"]
    assert passersby
    for visit in passersby:
        person = hour.people[visit.person]
        assert not visit.entered and visit.classification == "passerby"
        assert max(person.ys) < 0
    for visit in hour.truth.visits:
        if not visit.entered:
            continue
        assert visit.enter_ts is not None and visit.exit_ts is not None
        person = hour.people[visit.person]
        for t in np.linspace(visit.enter_ts, visit.exit_ts, 50):
            assert world.inside(*person.position(float(t)))
        assert not world.inside(*person.position(visit.enter_ts - 2.0))
        assert not world.inside(*person.position(visit.exit_ts + 2.0))


def test_truth__visit_lengths_are_realistic_and_classified_by_the_five_minute_rule() -> None:
    sim = simulate(default_world(), START, 4 * HOUR, seed=4)
    shoppers = [v for v in sim.truth.visits if v.entered]
    dwell = [v.dwell_s for v in shoppers]
    assert 10 * 60 <= statistics.median(dwell) <= 16 * 60
    assert any(120 <= d <= 300 for d in dwell)
    assert any(d >= 30 * 60 for d in dwell)
    for visit in shoppers:
        assert visit.classification == ("visitor" if visit.dwell_s >= 300 else "passerby")


def test_truth__staff_and_infrastructure_are_stable_and_present_all_along(hour: Simulation) -> None:
    staff = [d for d in hour.truth.devices if d.role == "staff"]
    infra = [d for d in hour.truth.devices if d.role == "infrastructure"]
    assert len(staff) == 4 and len(infra) == 3
    for device in staff + infra:
        assert device.stability == "universal" and len(device.macs) == 1
    assert all(w.staff_present == 4 for w in hour.truth.window_list(60))
    first, last = hour.truth.window_list(600)[0], hour.truth.window_list(600)[-1]
    for device in staff + infra:
        heard = [c.ts for caps in hour.captures.values() for c in caps if c.device == device.device]
        assert min(heard) < first.end and max(heard) >= last.start


def test_truth__ie_fingerprints_are_shared_by_a_model_not_unique_per_device(hour: Simulation) -> None:
    devices_per_fp: dict[str, set[str]] = defaultdict(set)
    for device in hour.truth.devices:
        assert 1 <= len(device.fingerprints) <= 3 or device.bursts == 0
        for fp in device.fingerprints:
            assert re.fullmatch(r"[0-9a-f]{16}", fp)
            devices_per_fp[fp].add(device.device)
    assert max(len(d) for d in devices_per_fp.values()) >= 10


def test_truth__sequence_numbers_restart_on_modern_phones_and_run_on_ios15(hour: Simulation) -> None:
    gaps: dict[str, list[int]] = defaultdict(list)
    for caps in hour.captures.values():
        by_device: dict[str, list[Capture]] = defaultdict(list)
        for cap in caps:
            by_device[cap.device].append(cap)
        for did, dcaps in by_device.items():
            model = hour.devices[did].model
            if model.randomization != "per_burst":
                continue
            for prev, nxt in itertools.pairwise(dcaps):
                if prev.mac != nxt.mac:
                    gaps[model.key].append((nxt.seq - prev.seq) % 4096)
    continued = {key: sum(g <= 64 for g in values) / len(values) for key, values in gaps.items() if len(values) > 30}
    assert continued.get("iphone-ios15", 1.0) == 1.0
    assert continued["iphone-ios17"] < 0.15
    assert continued["galaxy-android13"] < 0.15


def test_truth__probes_are_mostly_wildcard_with_some_directed(hour: Simulation) -> None:
    caps = [c for caps in hour.captures.values() for c in caps if hour.devices[c.device].model.role == "phone"]
    directed = sum(c.ssid_len > 0 for c in caps) / len(caps)
    assert 0.01 < directed < 0.2


def test_truth__write_truth_is_json_with_the_documented_shape(hour: Simulation, tmp_path: Path) -> None:
    hour.write_truth(tmp_path / "truth.json")
    data = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert set(data) == {"seed", "start_ts", "end_ts", "knobs", "world", "definitions", "windows", "zone_totals",
                         "visits", "devices", "summary"}
    assert set(data["windows"]) == {"60", "600"}
    assert len(data["windows"]["60"]) == 60 and len(data["windows"]["600"]) == 6
    assert data["knobs"]["randomizing"] == 0.6
    assert {m for d in data["devices"] for m in d["macs"]} == hour.truth.all_macs()


# --- radio ---------------------------------------------------------------------------------------------------


def test_radio__rssi_falls_with_distance_on_average(hour: Simulation) -> None:
    dist, rssi = [], []
    for sniffer in hour.world.sniffers:
        for cap in hour.captures[sniffer.name]:
            x, y = hour.device_position(cap.device, cap.ts)
            dist.append(math.hypot(x - sniffer.x, y - sniffer.y, sniffer.height_m - DEVICE_HEIGHT_M))
            rssi.append(cap.rssi)
    d, r = np.array(dist), np.array(rssi)
    bands = [r[(d >= lo) & (d < hi)].mean() for lo, hi in ((0, 4), (4, 8), (8, 16), (16, 32))]
    assert bands == sorted(bands, reverse=True)
    slope = np.polyfit(np.log10(np.maximum(d, 1.0)), r, 1)[0]
    assert -45 < slope < -15  # about -10·n with n = 3, flattened by the sensitivity cut-off


def test_radio__a_fixed_channel_sniffer_hears_only_its_channel_and_a_hopper_follows_its_plan() -> None:
    base = default_world()
    hopper = Sniffer(name="hop", x=12.0, y=8.0, hop=(1, 6, 11), hop_dwell_s=0.2)
    world = World(floor=base.floor, sniffers=(*base.sniffers, hopper))
    sim = simulate(world, START, 600.0, seed=9)
    assert {c.channel for c in sim.captures["sn-entrance"]} == {6}
    hops = sim.captures["hop"]
    assert {c.channel for c in hops} == {1, 6, 11}
    assert all(hopper.channel_at(c.ts) == c.channel for c in hops)


def test_radio__a_burst_spans_channels_1_6_11_within_a_tenth_of_a_second() -> None:
    floor = default_world().floor
    sniffers = tuple(Sniffer(name=f"ch{ch}", x=12.0, y=8.0, channel=ch) for ch in (1, 6, 11))
    sim = simulate(World(floor=floor, sniffers=sniffers), START, 900.0, seed=6, passersby_per_h=0)
    bursts: dict[str, list[Capture]] = defaultdict(list)
    for caps in sim.captures.values():
        for cap in caps:
            if sim.devices[cap.device].model.randomization == "per_burst":
                bursts[cap.mac].append(cap)
    assert len(bursts) > 50
    sizes = []
    for caps in bursts.values():
        assert max(c.ts for c in caps) - min(c.ts for c in caps) <= 0.12
        sizes.append(len(caps))
    assert max(sizes) <= 8 and min(sizes) >= 1
    assert sum(len({c.channel for c in caps}) == 3 for caps in bursts.values()) / len(bursts) > 0.8


# --- node feed ---------------------------------------------------------------------------------------------------


def test_node_lines__are_json_with_the_documented_fields(hour: Simulation) -> None:
    caps = hour.captures["sn-back"][:500]
    lines = list(node_lines(caps, "sn-1"))
    assert len(lines) == len(caps)
    for line, cap in zip(lines, caps, strict=True):
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        record = json.loads(line)
        assert set(record) == {"mac", "rssi", "ch", "seq", "ts", "fp", "ssid_len", "node"}
        assert MAC_RE.match(record["mac"]) and record["mac"] == cap.mac
        assert isinstance(record["rssi"], int) and -127 <= record["rssi"] < 0
        assert record["ch"] == 6 and 0 <= record["seq"] < 4096
        assert record["ts"] == pytest.approx(cap.ts, abs=1e-6)
        assert re.fullmatch(r"[0-9a-f]{16}", record["fp"])
        assert record["ssid_len"] == cap.ssid_len and record["node"] == "sn-1"


def test_stream_udp__sends_one_datagram_per_line(hour: Simulation) -> None:
    lines = list(node_lines(hour.captures["sn-entrance"][:40], "sn-entrance"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        assert stream_udp(lines, "127.0.0.1", sock.getsockname()[1]) == len(lines)
        received = [sock.recv(4096) for _ in lines]
    assert received == lines


def test_stream_udp__a_set_stop_event_sends_nothing(hour: Simulation) -> None:
    stop = threading.Event()
    stop.set()
    lines = node_lines(hour.captures["sn-entrance"][:5], "sn-entrance")
    assert stream_udp(lines, "127.0.0.1", 9, realtime=True, stop=stop) == 0


def test_pty_node__the_serial_side_reads_the_lines(hour: Simulation, tmp_path: Path) -> None:
    lines = list(node_lines(hour.captures["sn-middle"][:20], "sn-middle"))
    node = PtyNode(tmp_path / "ttyNODE")
    node.start()
    try:
        fd = os.open(tmp_path / "ttyNODE", os.O_RDONLY | os.O_NOCTTY)
        try:
            assert node.write(lines) == len(lines)
            expected = b"".join(lines)
            got = b""
            while len(got) < len(expected):
                got += os.read(fd, 65536)
        finally:
            os.close(fd)
    finally:
        node.stop()
        node.stop()
    assert got == expected
    assert not (tmp_path / "ttyNODE").exists()


# --- command line ----------------------------------------------------------------------------------------------


def test_cli__writes_one_capture_per_sniffer_and_the_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--duration", "300", "--seed", "2", "--fcs", "--pcapng", "--node-feed",
                 "--randomizing", "0.6"]) == 0
    for name in ("sn-entrance", "sn-middle", "sn-back"):
        packets = rdpcap(str(tmp_path / f"{name}.pcapng"))
        assert packets and packets[0].haslayer(Dot11FCS)
        assert len((tmp_path / f"{name}.jsonl").read_bytes().splitlines()) == len(packets)
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["knobs"]["randomizing"] == 0.6 and truth["knobs"]["fcs"] is True
    assert "wrote" in capsys.readouterr().out
