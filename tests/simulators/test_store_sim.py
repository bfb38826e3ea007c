"""The store-day simulator: one ground truth, consistent across its truth file, pcaps, door clips and till scans.

Most tests read one short generated day (an hour of opening, 16:30-18:30 simulated) written by the real CLI.
The camera test runs the gateway's own counter over that day's clips, the way the driver must read a clip
directory: in file order, one ``Counter`` for the whole directory, each frame at ``mtime - duration + i / fps``.
"""

import json
import math
import os
import threading
import time
from collections import Counter as Tally
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import serial

from drivers.camera.config import CameraConfig
from drivers.camera.protocol import Counter, CounterParams
from drivers.camera.sources import VideoFileSource
from drivers.wifi_probe.pcap import iter_pcap
from drivers.wifi_probe.protocol import ParseStats, parse_radiotap
from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner
from simulators.camera.render import stage
from simulators.store import AcceleratedClock, load_site, plan_clips, play_tills, probe_day, simulate_day
from simulators.store.__main__ import main
from simulators.store.camera import render_clip
from simulators.store.catalog import catalog
from simulators.store.site import BODY_REACH_M
from simulators.store.truth import build_truth

DAY = date(2026, 11, 22)
SEED = 3


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short store day (open 17:00-18:00, the evening peak) written by the CLI."""
    folder = tmp_path_factory.mktemp("store-day")
    assert main(["--date", DAY.isoformat(), "--seed", str(SEED), "--out", str(folder), "--hours", "17-18"]) == 0
    return folder


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def truth(out: Path) -> dict[str, Any]:
    return _json(out / "truth.json")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def clips(out: Path) -> dict[str, Any]:
    return _json(out / "entrance" / "clips.json")  # type: ignore[no-any-return]


def test_demo_store__config_is_the_store_of_the_brief() -> None:
    site = load_site()
    plan = site.world.floor
    zones = set(site.world.zone_names)
    assert (plan.width_m, plan.depth_m) == (25.0, 18.0)
    assert {"entrance", "promotion", "checkout"} <= zones
    assert 2 <= len([z for z in zones if z.startswith("aisle")]) <= 3
    assert len(site.world.sniffers) == 3
    assert min(s.y for s in site.world.sniffers) <= 1.5, "one sniffer hangs by the street window"
    assert sorted(site.tills) == ["till-1", "till-2"]
    assert [d.name for d in site.config.devices if isinstance(d, CameraConfig)] == [site.camera.device]


def test_cli__writes_every_output_the_manifest_lists(out: Path) -> None:
    manifest = _json(out / "manifest.json")
    assert (manifest["date"], manifest["timezone"], manifest["seed"]) == (DAY.isoformat(), "Asia/Shanghai", SEED)
    listed = [manifest["truth"], manifest["paths"], *manifest["wifi"]["pcaps"].values(), manifest["wifi"]["devices"],
              manifest["camera"]["index"], manifest["tills"]["scans"], manifest["esl"]["updates"]]
    for name in listed:
        assert (out / name).is_file(), name
    assert Path(manifest["config"]["path"]).name == "demo-store.toml"
    assert manifest["camera"]["clips"] == len(list((out / "entrance").glob("*.avi")))


def test_truth__entries_equal_exits_and_occupancy_is_cumulative_in_minus_out(truth: dict[str, Any]) -> None:
    summary = truth["summary"]
    assert summary["entries"] == summary["exits"] > 50
    assert sum(q["in"] for q in truth["traffic_15min"]) == sum(q["out"] for q in truth["traffic_15min"])
    assert sum(q["in"] for q in truth["traffic_15min"]) == summary["entries"]
    occupancy = truth["occupancy_per_minute"]
    events = [(e["ts"], 1 if e["direction"] == "in" else -1) for e in truth["door_events"]]
    for m, at_start in enumerate(occupancy["at_start"]):
        t = occupancy["start_ts"] + 60 * m
        assert at_start == sum(d for ts, d in events if ts < t) >= 0
        assert occupancy["max"][m] >= at_start
    assert occupancy["at_start"][0] == occupancy["at_start"][-1] == 0
    assert max(occupancy["max"]) == summary["peak_occupancy"] > 5


def test_truth__zone_and_cell_person_seconds_sum_to_the_time_inside(truth: dict[str, Any]) -> None:
    total = truth["summary"]["person_seconds"]
    heat = truth["heatmap"]
    assert sum(truth["zones"]["person_seconds"].values()) == total
    assert sum(s for _, s in heat["day"]) == total
    assert sum(s for hour in heat["hourly"] for _, s in hour["cells"]) == total
    assert sum(h["person_seconds"] for h in truth["hourly"]) == total
    assert round(sum(truth["occupancy_per_minute"]["avg"]) * 60) == total
    dwell = sum(v["dwell_s"] for v in truth["visits"])
    assert abs(total - dwell) <= len(truth["visits"]), "one-second sampling is off by under a second per visit"
    assert max(i for i, _ in heat["day"]) < heat["nx"] * heat["ny"]


def test_truth__hourly_figures_add_up_to_the_visits_and_transactions(truth: dict[str, Any]) -> None:
    hourly = truth["hourly"]
    assert sum(h["entries"] for h in hourly) == len(truth["visits"]) == truth["summary"]["entries"]
    assert sum(h["transactions"] for h in hourly) == len(truth["transactions"])
    assert sum(h["visitors"] for h in hourly) == sum(v["visitor"] for v in truth["visits"])
    assert sum(h["passersby"] for h in hourly) == truth["summary"]["passersby"]
    paying = {v["party"] for v in truth["visits"] if v["txn"] is not None}
    assert len(paying) == len(truth["transactions"])
    for txn in truth["transactions"]:
        assert txn["start_ts"] <= txn["first_scan_ts"] <= txn["last_scan_ts"] <= txn["end_ts"]
        assert 1 <= txn["items"] <= 15


def test_tills__a_fifteen_second_gap_rule_recovers_the_true_transactions(out: Path, truth: dict[str, Any]) -> None:
    rows = [json.loads(line) for line in (out / "tills.jsonl").read_text().splitlines()]
    runs_by_till: dict[str, list[list[dict[str, Any]]]] = {}
    for row in rows:  # the rule demo-store.toml configures: traffic.transaction_gap_s = 15
        runs = runs_by_till.setdefault(row["till"], [])
        if not runs or row["ts"] - runs[-1][-1]["ts"] > 15.0:
            runs.append([])
        runs[-1].append(row)
    found = [run for runs in runs_by_till.values() for run in runs]
    assert all(len({r["txn"] for r in run}) == 1 for run in found)
    assert len(found) == len(truth["transactions"])
    assert sorted(len(run) for run in found) == sorted(t["items"] for t in truth["transactions"])


def test_full_day__size_and_shape_of_a_mid_size_store() -> None:
    day = simulate_day(load_site(), DAY, 1)
    entries = len(day.shoppers)
    assert 900 <= entries <= 1400
    assert 0.35 <= len(day.transactions) / entries <= 0.45
    assert 4 <= len(day.staff) <= 6
    assert len(day.passersby) >= 3000
    assert any(len(p.members) == 3 for p in day.parties) and any(len(p.members) == 2 for p in day.parties)
    per_hour = Tally(int((e.ts - day.midnight) // 3600) for e in day.door if e.direction == "in")
    assert per_hour[17] > per_hour[15] and per_hour[12] > per_hour[14], "after-work and lunch peaks"


def test_full_day__door_clips_total_at_most_forty_minutes() -> None:
    day = simulate_day(load_site(), DAY, 1)
    clips = plan_clips(day)
    assert sum(c.frames for c in clips) / day.site.camera.fps <= 40 * 60
    assert sum(len(c.crossings) for c in clips) == len(day.door)


def test_day__passersby_never_inside_and_only_door_traffic_in_the_camera_view() -> None:
    site = load_site()
    day = simulate_day(site, DAY, SEED, (17.0, 18.0))
    assert all(y < 0 for p in day.passersby for y in p.ys)
    x0, y0, x1, y1 = site.camera.view
    reach = BODY_REACH_M
    doors: dict[str, list[float]] = {}
    for event in day.door:
        doors.setdefault(event.person, []).append(event.ts)
    for person in (*day.shoppers, *day.staff, *day.passersby):
        ts = np.arange(person.appear_ts, person.leave_ts, 0.25)
        xs, ys = np.interp(ts, person.ts, person.xs), np.interp(ts, person.ts, person.ys)
        seen = (xs > x0 - reach) & (xs < x1 + reach) & (ys > y0 - reach) & (ys < y1 + reach)
        for t in ts[seen]:
            assert any(abs(t - d) < 3.0 for d in doors.get(person.pid, [])), (person.pid, t)


def test_clips__mtime_minus_duration_is_when_the_first_frame_happened(out: Path, clips: dict[str, Any]) -> None:
    entries = clips["clips"]
    assert entries[0]["in"] == entries[0]["out"] == 0, "the first clip is the empty warm-up"
    for entry in entries[::7]:
        source = VideoFileSource(out / "entrance" / entry["file"])
        source.open()
        try:
            assert (source.frame_count, source.fps) == (entry["frames"], 12.0)
            assert source.start_ts == pytest.approx(entry["start_ts"], abs=1e-3)
        finally:
            source.close()
    for entry in entries:
        assert os.stat(out / "entrance" / entry["file"]).st_mtime == pytest.approx(entry["end_ts"], abs=1e-6)


def test_clips__every_crossing_in_exactly_one_clip_and_counted_by_the_truth_rule(truth: dict[str, Any],
                                                                                 clips: dict[str, Any]) -> None:
    seen = Tally((c["person"], c["direction"], c["ts"]) for e in clips["clips"] for c in e["crossings"])
    assert seen == Tally((e["person"], e["direction"], e["ts"]) for e in truth["door_events"])
    for entry in clips["clips"]:
        assert (entry["in"], entry["out"]) == (entry["rule_counts"]["in"], entry["rule_counts"]["out"])
        for crossing in entry["crossings"]:
            assert 0 < crossing["frame"] < entry["frames"]
            assert entry["start_ts"] < crossing["ts"] < entry["end_ts"]
    starts = [e["start_ts"] for e in clips["clips"]]
    assert starts == sorted(starts) and all(b - a >= 2.0 for a, b in zip(
        [e["end_ts"] for e in clips["clips"]], starts[1:], strict=False))


def test_camera__the_gateway_counter_on_the_clips_matches_the_truth(out: Path, clips: dict[str, Any]) -> None:
    site = load_site()
    config = next(d for d in site.config.devices if isinstance(d, CameraConfig))
    counter = Counter(CounterParams.from_config(config, floor_bounds=(0.0, 0.0, site.width, site.depth)))
    counted: Tally[str] = Tally()
    for entry in clips["clips"]:
        capture = cv2.VideoCapture(str(out / "entrance" / entry["file"]), cv2.CAP_FFMPEG)
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            result = counter.process(np.asarray(frame, dtype=np.uint8), entry["start_ts"] + index / clips["fps"])
            counted.update(c.direction for c in result.crossings)
            index += 1
        capture.release()
        assert index == entry["frames"]
    true = Tally(c["direction"] for e in clips["clips"] for c in e["crossings"])
    print("camera counts", dict(counted), "truth", dict(true))
    for direction in ("in", "out"):
        assert abs(counted[direction] - true[direction]) <= max(1, math.ceil(0.03 * true[direction])), direction


def test_pcaps__one_per_sniffer_in_time_order_spanning_the_day(out: Path, truth: dict[str, Any]) -> None:
    manifest = _json(out / "manifest.json")
    stats = ParseStats()
    for name, rel in manifest["wifi"]["pcaps"].items():
        stamps = []
        for k, (ts, _linktype, frame) in enumerate(iter_pcap((out / rel).read_bytes())):
            stamps.append(ts)
            if k % 50 == 0:
                assert parse_radiotap(bytes(frame), stats) is not None
        assert len(stamps) == manifest["wifi"]["frames"][name] > 1000
        assert stamps == sorted(stamps)
        assert truth["start_ts"] <= stamps[0] < truth["start_ts"] + 120
        assert truth["end_ts"] - 120 < stamps[-1] < truth["end_ts"]
    assert stats.malformed == stats.truncated == 0


def test_generate__the_same_seed_gives_the_same_day_bytes_and_clips(tmp_path: Path) -> None:
    site = load_site()
    one, two = (simulate_day(site, DAY, 9, (12.0, 12.5), margin_s=300.0) for _ in range(2))
    assert build_truth(one) == build_truth(two)
    assert build_truth(one) != build_truth(simulate_day(site, DAY, 10, (12.0, 12.5), margin_s=300.0))
    a, b = probe_day(one), probe_day(two)
    assert {n: [c.data for c in caps] for n, caps in a.captures.items()} == \
        {n: [c.data for c in caps] for n, caps in b.captures.items()}
    clip = plan_clips(one)[1]
    shared = stage(site.camera.scenario("stage", 1, 9), site.camera.fmap)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        render_clip(one if folder == "a" else two, clip, tmp_path / folder, shared, 5)
    assert (tmp_path / "a" / f"{clip.name}.avi").read_bytes() == (tmp_path / "b" / f"{clip.name}.avi").read_bytes()


def test_esl_updates__known_gtins_with_lower_offer_prices(out: Path) -> None:
    gtins = {p.gtin for p in catalog(SEED)}
    lines = [json.loads(line) for line in (out / "esl_updates.jsonl").read_text().splitlines()]
    assert [u["reason"] for u in lines] == ["markdown"], "a 16:30-18:30 day sees only the 17:00 markdowns"
    for item in lines[0]["items"]:
        assert item["gtin"] in gtins and item["currency"] == "CNY" and item["price"] > 0


class _FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_accelerated_clock__maps_simulated_time_to_wall_waits_and_stops() -> None:
    wall = _FakeMonotonic()
    clock = AcceleratedClock(1_000.0, 60.0, monotonic=wall)
    assert clock.now() == 1_000.0
    wall.now += 0.5
    assert clock.now() == 1_030.0
    assert clock.wall_delay(1_090.0) == pytest.approx(1.0)
    assert clock.sleep_until(1_000.0), "a time already past needs no wait"
    clock.stop()
    assert not clock.sleep_until(5_000.0), "stop ends a wait at once"


def test_tills__player_types_each_scan_into_its_pty_scanner_in_order_at_the_clock(out: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (out / "tills.jsonl").read_text().splitlines()]
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    chosen = sorted([r for r in rows if r["till"] == "till-1"][:6] + [r for r in rows if r["till"] == "till-2"][:6],
                    key=lambda r: r["ts"])
    first = chosen[0]["ts"]
    scale = max(60.0, (chosen[-1]["ts"] - first) / 1.0)  # the chosen scans replay in about a second
    short = tmp_path / "tills.jsonl"
    short.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    scanners = {name: PtyScanner(tmp_path / name) for name in ("till-1", "till-2")}
    for scanner in scanners.values():
        scanner.start()
    ports = {name: serial.serial_for_url(str(tmp_path / name), baudrate=115200, timeout=0.05)
             for name in scanners}
    clock = AcceleratedClock(first - 2.0, scale)
    sent_at: list[float] = []

    class Recorder:
        def __init__(self, scanner: PtyScanner) -> None:
            self.scanner = scanner

        def send(self, scan: SimScan) -> None:
            sent_at.append(clock.now())
            self.scanner.send(scan)

    received: dict[str, bytes] = dict.fromkeys(scanners, b"")
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for name, port in ports.items():
                received[name] += port.read(4096)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        assert play_tills(short, {n: Recorder(s) for n, s in scanners.items()}, clock) == len(chosen)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 2.0
        want = {n: "".join(r["aim"] + r["code"] + "\r" for r in chosen if r["till"] == n).encode()
                for n in scanners}
        while received != want and time.monotonic() < deadline:
            done.wait(0.02)
    finally:
        done.set()
        reader.join(1.0)
        for port in ports.values():
            port.close()
        for scanner in scanners.values():
            scanner.stop()
    assert received == want, "each till's codes arrive on its own pty, in order"
    assert all(0 <= at - r["ts"] < scale * 0.25 for at, r in zip(sent_at, chosen, strict=True)), "on time, not early"
    assert elapsed == pytest.approx((chosen[-1]["ts"] - first + 2.0) / scale, abs=0.25)
