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

import numpy as np

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
    text = text.replace('pcap = "wifi/', f'pcap = "{day_dir / "wifi"}/')
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


def _correlation(ours: np.ndarray, truth: np.ndarray) -> float:
    if ours.std() == 0 or truth.std() == 0:
        return 0.0
    return float(np.corrcoef(ours.ravel(), truth.ravel())[0, 1])


def _accuracy(workdir: Path, config: Path, truth: dict[str, Any], day: date) -> dict[str, Any]:
    """The gateway's day (what ``edge traffic`` and ``edge report`` show) against the ground truth."""
    from edge.cli.common import load
    from edge.reports.day import load_day

    conn = sqlite3.connect(f"file:{workdir / 'edge.db'}?mode=ro", uri=True)
    try:
        report = load_day(conn, load(config), day)
    finally:
        conn.close()
    grid = truth["heatmap"]
    true_heat = np.zeros(grid["nx"] * grid["ny"])
    for index, seconds in grid["day"]:
        true_heat[index] += seconds
    ours = report.heat.ravel().astype(float)
    correlation = _correlation(ours, true_heat) if ours.size == true_heat.size else 0.0
    seconds = truth["zones"]["person_seconds"]
    names = list(seconds)
    true_share = {name: value / max(1.0, sum(seconds.values())) for name, value in seconds.items()}
    our_share = {zone.zone: zone.share or 0.0 for zone in report.zones}
    summary, totals = truth["summary"], report.totals
    return {"entries_true": summary["entries"], "entries_counted": totals.entries,
            "visitors_true": summary["visitors"], "visitors_counted": round(totals.visitors),
            "passersby_true": summary["passersby"], "passersby_counted": round(totals.passersby or 0),
            "transactions_true": summary["transactions"], "transactions_counted": totals.transactions,
            "zone_share_worst_pp": round(100 * max(abs(our_share.get(n, 0.0) - true_share[n]) for n in names), 1),
            "heatmap_correlation": round(correlation, 3)}


def run(workdir: Path, as_json: bool, seed: int) -> int:
    """Run the demo; returns 0 when HQ received every aggregate and the day's entries are within 2 %."""
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
    manifest = generate(day_dir, day=day, seed=seed)
    truth = json.loads((day_dir / "truth.json").read_text())
    say(f"  {truth['summary']['entries']} shoppers came in, generated in {time.monotonic() - started:.0f} s")

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
    entries_error = abs(accuracy["entries_counted"] - accuracy["entries_true"]) / max(1, accuracy["entries_true"])
    esl = _query(db, "SELECT state, count(*) FROM esl_updates GROUP BY state")
    figures = {
        "duration_s": round(time.monotonic() - started, 1), "date": str(day), "seed": seed,
        "generate_s": manifest.get("timings", {}).get("total"),
        "aggregates_sent": sent, "hq_received_unique": hq_unique, **accuracy,
        "entries_error_pct": round(100 * entries_error, 2), "esl_updates": dict(esl),
        "report_html": str(html) if html.exists() else None, "heatmap_png": str(png) if png.exists() else None,
        "daemon_peak_rss_mb": peak_mb, "daemon_exit": daemon_rc, "workdir": str(workdir),
    }
    ok = (daemon_rc == 0 and hq_unique == sent and entries_error <= 0.02 and png.exists() and html.exists()
          and accuracy["heatmap_correlation"] >= 0.9)
    figures["ok"] = ok
    if as_json:
        print(json.dumps({**figures, "status": json.loads(status.stdout or "{}")}))
        return 0 if ok else 1
    print("\n$ edge status\n" + status.stdout.rstrip())
    print(f"\n$ edge traffic --date {day}\n" + traffic.stdout.rstrip())
    print(f"\n$ edge heatmap --date {day} --png {png}\n" + (heat.stdout + heat.stderr).rstrip())
    print(f"\n$ edge report --date {day} --html {html}\n" + (report.stdout + report.stderr).rstrip())
    verdict = "every one" if hq_unique == sent else "MISSING"
    print(f"\nHQ received {hq_unique} unique aggregates of {sent} sent: {verdict}")
    print(f"entries: {accuracy['entries_counted']} counted vs {accuracy['entries_true']} true "
          f"({100 * entries_error:.1f} % off); fused heatmap vs truth r = {accuracy['heatmap_correlation']}")
    print(f"shelf labels: {dict(esl)}; daemon peak RSS {peak_mb} MB; {figures['duration_s']} s in all")
    return 0 if ok else 1


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
