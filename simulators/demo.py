"""The demo: a whole simulated store day through the real daemon, synced to a local HQ, checked against truth.

1. ``simulators.store`` writes one store day (``firmware_configs/stores/demo-store.toml``, the previous day in the
   store's time zone): probe captures per sniffer, the door camera's motion clips, till scans, price changes and
   the ground truth.
2. A local mosquitto, the HQ reference receiver (``edge hq run``), a fake OpenEPaperLink access point with labels
   bound to the store's products, and pty scanners for the two tills start; then ``edge run`` on the day: the
   sniffers replay their captures, the camera its clips, and the tills are typed on an accelerated store clock
   shared with the daemon (``runtime.simulated_clock``); HQ sends the day's price changes as ``esl/update``.
3. When every source has finished and HQ has every aggregate, the daemon stops and the demo shows ``edge status``,
   the traffic table, the heatmap PNG and the HTML report, and compares them with the ground truth.

Run with ``edge demo`` or ``python -m simulators.demo``; ``--json`` ends with one JSON object of the figures.
"""

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from simulators.barcode.scanner import PtyScanner
from simulators.broker import Broker
from simulators.esl import FakeAP
from simulators.store import DEFAULT_CONFIG, AcceleratedClock, generate, play_tills
from simulators.store.catalog import catalog

TILLS = ("till-1", "till-2")
LABELS = 150
STORE = "demo-store"
SPEED = 720.0  # store seconds per wall second: the 13-hour span in about 65 s


def _edge(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def _config(day_dir: Path, workdir: Path, broker_url: str, ap_url: str, start: float, anchor: float) -> str:
    """The demo store's config pointed at the generated files, the pty tills, the broker and the fake AP."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    database = f'path = "{workdir / "edge.db"}"\nmin_free_disk_mb = 64'
    text = text.replace('path = "/var/lib/store-edge/edge.db"', database)
    # The sniffers replay at the store clock's pace, as live capture would arrive (as fast as possible, the whole
    # day would reach the WiFi rollup in one go).
    text = text.replace('pcap = "wifi/', f'replay_speed = {SPEED}\npcap = "{day_dir / "wifi"}/')
    text = text.replace('source = "entrance"', f'source = "{day_dir / "entrance"}"')
    for index, till in enumerate(TILLS):
        text = text.replace(f'port = "/dev/ttyACM{index}"', f'port = "{workdir / till}"\nreconnect_max_s = 0.5')
    clock = datetime.fromtimestamp(start, ZoneInfo("UTC")).isoformat()
    return text + f"""
# Added by the demo: a local HQ, the fake shelf-label access point, and the accelerated store clock.
[sync]
enabled = true
broker = "{broker_url}"
replay_rate_per_s = 200
health_every_s = 30

[runtime]
heartbeat_s = 1.0
simulated_clock = {{ start = "{clock}", speed = {SPEED}, anchor = {anchor} }}

[[devices]]
type = "esl"
name = "esl-ap"
url = "{ap_url}"
reconcile_s = 60
window_s = 300
"""


def _query(path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _wait(predicate: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children (the camera runs in a child process), sampled."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss", daemon=True)
        self.pid, self.peak_kb, self._done = pid, 0, threading.Event()

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tree(self) -> list[int]:
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            pid = frontier.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            pids += [int(c) for c in children]
            frontier += [int(c) for c in children]
        return pids

    def run(self) -> None:
        while not self._done.wait(0.25):
            self.peak_kb = max(self.peak_kb, sum(self._rss_kb(pid) for pid in self._tree()))

    def stop(self) -> float:
        self._done.set()
        self.join(2)
        return round(self.peak_kb / 1024, 1)


def _bind_labels(db: Path, ap: FakeAP, seed: int) -> int:
    """Bind the fake AP's labels to the store's products, as a technician's pairing would have."""
    from edge.store.db import migrate

    migrate(db)
    products = catalog(seed)
    pairs = list(zip(ap.macs(), (p.gtin for p in products), strict=False))
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO esl_bindings (label, gtin, bound_at, source) VALUES (?, ?, ?, 'demo')",
                         [(mac, gtin, time.time()) for mac, gtin in pairs])
    return len(pairs)


def _hq_commands(broker: Broker, day_dir: Path, clock: AcceleratedClock, stop: threading.Event) -> threading.Thread:
    """HQ sends each of the day's price changes as ``esl/update`` when the store clock reaches it."""
    import paho.mqtt.client as mqtt

    def run() -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-hq-commands", protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            for number, line in enumerate((day_dir / "esl_updates.jsonl").read_text().splitlines()):
                update = json.loads(line)
                if not clock.sleep_until(update["ts"]) or stop.is_set():
                    return
                body = {"v": 1, "id": f"prices-{number}", "name": "esl/update", "store": STORE,
                        "issued_at": datetime.now(ZoneInfo("UTC")).isoformat(), "args": {"items": update["items"]}}
                client.publish(f"retail/v1/{STORE}/cmd/esl/update", json.dumps(body), qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()

    thread = threading.Thread(target=run, name="hq-commands", daemon=True)
    thread.start()
    return thread


def _sources_done(db: Path) -> bool:
    rows = _query(db, "SELECT name, details_json FROM device_status")
    replays = [json.loads(details).get("replay") for name, details in rows if not name.startswith(("till", "esl"))]
    return len(replays) == 4 and all(r == "finished" for r in replays)


def _outbox_settled(db: Path, hq_db: Path, quiet_s: float = 6.0) -> Callable[[], bool]:
    """True once the outbox has not grown for ``quiet_s`` and HQ holds every message it sent."""
    last = {"count": -1, "since": time.monotonic()}

    def check() -> bool:
        count = _query(db, "SELECT count(*), count(sent_at) FROM outbox")
        total, sent = count[0] if count else (0, 0)
        if total != last["count"]:
            last.update(count=total, since=time.monotonic())
        received = _query(hq_db, "SELECT count(*) FROM messages WHERE store = ?", STORE)
        at_hq = received[0][0] if received else 0
        return total > 0 and sent == total and at_hq >= sent and time.monotonic() - last["since"] >= quiet_s

    return check


HEAT_BLOCK = 5
"""The fused heatmap is compared with the truth in blocks of 5 × 5 cells (2.5 m): WiFi places a phone to within a
few metres, and at 0.5 m the truth itself is mostly the noise of which random shelf spot each shopper stopped at
(even the truth's own zone totals spread evenly over each zone correlate only about 0.4 with it there)."""


def _accuracy(workdir: Path, config: Path, truth: dict[str, Any], day: date) -> dict[str, Any]:
    """The gateway's day (what ``edge traffic`` and ``edge report`` show) against the ground truth."""
    from edge.analytics import floormap
    from edge.cli.common import load
    from edge.reports.day import load_day

    conn = sqlite3.connect(f"file:{workdir / 'edge.db'}?mode=ro", uri=True)
    try:
        report = load_day(conn, load(config), day)
    finally:
        conn.close()
    grid = truth["heatmap"]
    true_heat = floormap.dense(floormap.Grid(grid["cell_m"], grid["nx"], grid["ny"]), grid["day"])
    same = report.heat.shape == true_heat.shape
    blocks = floormap.heatmap_correlation(floormap.block_sum(report.heat, HEAT_BLOCK),
                                        floormap.block_sum(true_heat, HEAT_BLOCK)) if same else 0.0
    cells = floormap.heatmap_correlation(report.heat, true_heat) if same else 0.0
    seconds = truth["zones"]["person_seconds"]
    true_share = {name: value / max(1.0, sum(seconds.values())) for name, value in seconds.items()}
    our_share = {zone.zone: zone.share or 0.0 for zone in report.zones}
    ours_by_hour = {line.start: line.entries for line in report.hours}
    hourly = [abs((ours_by_hour.get(h["start_ts"]) or 0) - h["entries"]) / h["entries"]
              for h in truth["hourly"] if h["entries"]]
    # The truth of the hours the report covers (the simulation runs half an hour past closing; that hour has
    # passersby but no store hour to report them in).
    covered = [h for h in truth["hourly"] if h["start_ts"] in ours_by_hour]
    summary, totals = truth["summary"], report.totals
    return {"entries_true": summary["entries"], "entries_counted": totals.entries,
            "entries_hourly_worst_pct": round(100 * max(hourly, default=0.0), 1),
            "visitors_true": sum(h["visitors"] for h in covered), "visitors_counted": round(totals.visitors),
            "passersby_true": sum(h["passersby"] for h in covered),
            "passersby_counted": round(totals.passersby or 0),
            "transactions_true": summary["transactions"], "transactions_counted": totals.transactions,
            "zone_share_worst_pp": round(100 * max(abs(our_share.get(n, 0.0) - true_share[n]) for n in seconds), 1),
            "heatmap_correlation": round(blocks, 3), "heatmap_correlation_0_5m": round(cells, 3)}


def _bars(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each accuracy bar of the store day (issue 7) with the measured value and whether it is met."""
    def off(ours: float | None, true: float) -> float:
        return round(100 * abs((ours or 0) - true) / max(1.0, true), 1)

    measured = {
        "entries_day_pct": (off(figures["entries_counted"], figures["entries_true"]), 2.0),
        "entries_hourly_worst_pct": (figures["entries_hourly_worst_pct"], 5.0),
        # Not an issue bar: at 720x a customer's 15 s till gap is 21 ms of wall time, so a reader thread held up by
        # a rollup can merge two customers' scans (on a store's real clock the gap is 15 s).
        "transactions_pct": (off(figures["transactions_counted"], figures["transactions_true"]), 5.0),
        "visitors_pct": (off(figures["visitors_counted"], figures["visitors_true"]), 10.0),
        "passersby_pct": (off(figures["passersby_counted"], figures["passersby_true"]), 10.0),
        "zone_share_worst_pp": (figures["zone_share_worst_pp"], 5.0),
    }
    bars = {name: {"value": value, "max": limit, "met": value <= limit} for name, (value, limit) in measured.items()}
    bars["heatmap_correlation"] = {"value": figures["heatmap_correlation"], "min": 0.9,
                                   "met": figures["heatmap_correlation"] >= 0.9}
    return bars


def _fusion_closed(db: Path, until: float) -> bool:
    rows = _query(db, "SELECT watermark FROM rollup_state WHERE kind = 'fusion'")
    return bool(rows) and float(rows[0][0]) >= until


def run(workdir: Path, as_json: bool, seed: int) -> int:
    """Run the demo; returns 0 when it worked: the daemon stopped cleanly, HQ received every aggregate, the day's
    entries are within 2 % and both files were written (the other accuracy bars are reported, met or not)."""
    started = time.monotonic()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for old in [*workdir.glob("edge.db*"), *workdir.glob("hq.db*")]:
        old.unlink()
    say = (lambda *_: None) if as_json else print
    tz = ZoneInfo("Asia/Shanghai")
    day = (datetime.now(tz) - timedelta(days=1)).date()
    day_dir = workdir / "day"
    say(f"StoreEdge demo: simulating {day} at the demo store (seed {seed}) into {day_dir} ...")
    generate(day_dir, day=day, seed=seed)
    generate_s = round(time.monotonic() - started, 1)
    truth = json.loads((day_dir / "truth.json").read_text())
    say(f"  {truth['summary']['entries']} shoppers came in, generated in {generate_s:.0f} s")

    broker = Broker(workdir / "broker")
    broker.start()
    ap = FakeAP(LABELS, seed=seed, checkin_s=2.0, upload_s=0.01, transfer_kbps=50.0, sys_interval_s=2.0)
    ap.start()
    config, db, hq_db = workdir / "store.toml", workdir / "edge.db", workdir / "hq.db"
    labels = _bind_labels(db, ap, seed)
    anchor = time.time() + 6.0  # the store clock starts when the daemon has opened the tills
    config.write_text(_config(day_dir, workdir, broker.url, ap.url, truth["start_ts"], anchor), encoding="utf-8")
    logs = [(workdir / name).open("w", encoding="utf-8") for name in ("daemon.log", "hq.log")]
    hq = subprocess.Popen(_edge("hq", "run", "--broker", broker.url, "--db", str(hq_db), "--client-id", "demo-hq",
                                "--group", ""), stdout=logs[1], stderr=subprocess.STDOUT)
    scanners = {till: PtyScanner(workdir / till) for till in TILLS}
    for scanner in scanners.values():
        scanner.start()
    daemon = subprocess.Popen(_edge("run", "--config", str(config)), stdout=logs[0], stderr=subprocess.STDOUT)
    rss = RssSampler(daemon.pid)
    rss.start()
    stop = threading.Event()
    say(f"  daemon, mosquitto (port {broker.port}), HQ receiver, {labels} shelf labels and two tills running; "
        f"the store clock runs {SPEED:.0f}x")
    try:
        for scanner in scanners.values():
            scanner.wait_for_reader(timeout=20)
        time.sleep(max(0.0, anchor - time.time()))
        clock = AcceleratedClock(truth["start_ts"], SPEED, monotonic=time.time)
        commands = _hq_commands(broker, day_dir, clock, stop)
        typed = play_tills(day_dir / "tills.jsonl", scanners, clock)  # type: ignore[arg-type]
        say(f"  store day replayed: {typed} till scans typed; waiting for the camera, sniffers and HQ ...")
        commands.join(timeout=10)
        _wait(lambda: _sources_done(db), 120)
        # The fusion job closes an hour once every source is past it (WiFi by the visit horizon); the captures end
        # half an hour after closing, so every hour but the last with shoppers closes (the reports compute that
        # one on the spot and mark it).
        last_hour = max((h["start_ts"] for h in truth["hourly"] if h["entries"]), default=truth["start_ts"])
        _wait(lambda: _fusion_closed(db, last_hour), 90)
        _wait(_outbox_settled(db, hq_db), 90)
        status = subprocess.run(_edge("status", "--config", str(config), *(["--json"] if as_json else [])),
                                capture_output=True, text=True, check=False)
    finally:
        stop.set()
        daemon.send_signal(signal.SIGTERM)
        daemon_rc = daemon.wait(timeout=20)
        peak_mb = rss.stop()
        for scanner in scanners.values():
            scanner.stop()
        hq.send_signal(signal.SIGTERM)
        hq.wait(timeout=15)
        ap.stop()
        broker.stop()
        for log in logs:
            log.close()
    png, html = workdir / "heatmap.png", workdir / "report.html"
    traffic = subprocess.run(_edge("traffic", "--config", str(config), "--date", str(day)),
                             capture_output=True, text=True, check=False)
    heat = subprocess.run(_edge("heatmap", "--config", str(config), "--date", str(day), "--png", str(png)),
                          capture_output=True, text=True, check=False)
    report = subprocess.run(_edge("report", "--config", str(config), "--date", str(day), "--html", str(html)),
                            capture_output=True, text=True, check=False)
    sent = _query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL")[0][0]
    hq_unique = _query(hq_db, "SELECT count(*) FROM messages WHERE store = ?", STORE)[0][0]
    accuracy = _accuracy(workdir, config, truth, day)
    esl = _query(db, "SELECT state, count(*) FROM esl_updates GROUP BY state")
    figures: dict[str, Any] = {
        "duration_s": round(time.monotonic() - started, 1), "date": str(day), "seed": seed, "generate_s": generate_s,
        "aggregates_sent": sent, "hq_received_unique": hq_unique, **accuracy, "esl_updates": dict(esl),
        "report_html": str(html) if html.exists() else None, "heatmap_png": str(png) if png.exists() else None,
        "daemon_peak_rss_mb": peak_mb, "daemon_exit": daemon_rc, "workdir": str(workdir),
    }
    bars = _bars(figures)
    # The run worked: the daemon stopped cleanly, HQ has every aggregate, the day's entries are right, files exist.
    worked = (daemon_rc == 0 and hq_unique == sent and bars["entries_day_pct"]["met"] and png.exists()
              and html.exists())
    figures.update(bars=bars, worked=worked, ok=worked and all(bar["met"] for bar in bars.values()))
    if as_json:
        print(json.dumps({**figures, "status": json.loads(status.stdout or "{}")}))
        return 0 if worked else 1
    print("\n$ edge status\n" + status.stdout.rstrip())
    print(f"\n$ edge traffic --date {day}\n" + traffic.stdout.rstrip())
    print(f"\n$ edge heatmap --date {day} --png {png}\n" + (heat.stdout + heat.stderr).rstrip())
    print(f"\n$ edge report --date {day} --html {html}\n" + (report.stdout + report.stderr).rstrip())
    verdict = "every one" if hq_unique == sent else "MISSING"
    print(f"\nHQ received {hq_unique} unique aggregates of {sent} sent: {verdict}")
    print("against the simulator's ground truth:")
    for name, bar in bars.items():
        limit = f"<= {bar['max']}" if "max" in bar else f">= {bar['min']}"
        print(f"  {name:<26} {bar['value']:>8}  (bar {limit}) {'met' if bar['met'] else 'NOT MET'}")
    print(f"  entries {accuracy['entries_counted']} counted / {accuracy['entries_true']} true; visitors "
          f"{accuracy['visitors_counted']} / {accuracy['visitors_true']}; passersby {accuracy['passersby_counted']} / "
          f"{accuracy['passersby_true']}; transactions {accuracy['transactions_counted']} / "
          f"{accuracy['transactions_true']}; heatmap r at 0.5 m {accuracy['heatmap_correlation_0_5m']}")
    print(f"shelf labels: {dict(esl)}; daemon peak RSS {peak_mb} MB; {figures['duration_s']} s in all")
    return 0 if worked else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.demo [--workdir DIR] [--seed N] [--json]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.demo", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"), help="where files go (default demo-run)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated day (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    args = parser.parse_args(argv)
    return run(args.workdir, args.json, args.seed)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
