"""The demo: the real daemon over a simulated store, syncing to a local HQ, then the checks against ground truth.

For now the store is two serial scanners (a till and an aisle scanner) typing realistic GS1 codes, with one
unplugged and replugged midway; the daemon syncs its aggregates over a local mosquitto to the HQ reference
receiver. Run with ``edge demo`` or ``python -m simulators.demo``.
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from drivers.barcode.config import RcnLayout
from simulators.barcode.codes import random_scan
from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner
from simulators.broker import Broker

RCN_LAYOUTS = (RcnLayout(name="cn-13-price", pattern="2IIIIIIPPPPPC"),
               RcnLayout(name="cn-18-scale", pattern="26IIIIIPPPPPWWWWWC"))
SCANNERS = (("till-1", "CR", b"\r", 4.0), ("aisle-3", "CRLF", b"\r\n", 1.5))


def _config(workdir: Path, broker_url: str) -> str:
    devices = "".join(
        f"""
[[devices]]
type = "barcode"
name = "{name}"
port = "{workdir / name}"
terminator = "{terminator}"
reconnect_max_s = 1.0
rcn_layouts = [{", ".join(f'{{ name = "{r.name}", pattern = "{r.pattern}" }}' for r in RCN_LAYOUTS)}]
"""
        for name, terminator, _, _ in SCANNERS
    )
    return f"""# Written by the demo; see firmware_configs/stores/example.toml for a real store.
store_id = "demo-0001"
timezone = "Asia/Shanghai"

[storage]
path = "{workdir / 'edge.db'}"
min_free_disk_mb = 64

[runtime]
heartbeat_s = 1.0
rollup_window_s = 10
rollup_lateness_s = 1.0

# Short windows so a 30-second demo shows aggregates reaching HQ; a store uses the 15-minute default.
[sync]
enabled = true
broker = "{broker_url}"
batch_window_s = 10
health_every_s = 10
{devices}"""


def _edge(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def _scans(seed: int) -> Iterator[SimScan]:
    rng = random.Random(seed)
    while True:
        yield random_scan(rng, bad_share=0.05, rcn_layouts=RCN_LAYOUTS)


def _start_scanners(workdir: Path, duration: float, stop: threading.Event) -> list[tuple[PtyScanner, threading.Thread]]:
    running = []
    for index, (name, _, terminator, rate) in enumerate(SCANNERS):
        scanner = PtyScanner(workdir / name, terminator)
        scanner.start()
        # The till scanner is unplugged for 3 s halfway through, as a technician would to swap a cable.
        unplug_at = int(rate * duration / 2) if index == 0 else None
        thread = threading.Thread(
            target=scanner.run, args=(_scans(index), rate, stop),
            kwargs={"unplug_at": unplug_at, "unplugged_s": 3.0, "reader_timeout_s": 10.0},
            name=f"sim-{name}", daemon=True,
        )
        thread.start()
        running.append((scanner, thread))
    return running


def _hq_scans(hq_db: Path) -> int:
    """Scans HQ has received, summed over every scans message it stored."""
    if not hq_db.exists():
        return 0
    conn = sqlite3.connect(hq_db)
    try:
        rows = conn.execute("SELECT payload_json FROM messages WHERE kind = 'scans'").fetchall()
    except sqlite3.OperationalError:
        return 0  # the receiver is still creating its database
    finally:
        conn.close()
    return sum(row["scans"] for (payload,) in rows for row in json.loads(payload)["rows"])


def _count(path: Path, sql: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def run(duration: float, workdir: Path, as_json: bool) -> int:
    """Run the demo; returns 0 when every scan was stored once and HQ received every aggregate sent."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for old in [*workdir.glob("edge.db*"), *workdir.glob("hq.db*")]:
        old.unlink()
    say = (lambda *_: None) if as_json else print
    broker = Broker(workdir / "broker")
    broker.start()
    config, db_path, hq_db = workdir / "store.toml", workdir / "edge.db", workdir / "hq.db"
    config.write_text(_config(workdir, broker.url), encoding="utf-8")
    say(f"StoreEdge demo: {len(SCANNERS)} simulated scanners for {duration:.0f} s, syncing to a local HQ over "
        f"mosquitto on port {broker.port}; files in {workdir}")
    logs = [(workdir / name).open("w", encoding="utf-8") for name in ("daemon.log", "hq.log")]
    hq = subprocess.Popen(_edge("hq", "run", "--broker", broker.url, "--db", str(hq_db), "--client-id", "demo-hq",
                                "--session-expiry", "300"), stdout=logs[1], stderr=subprocess.STDOUT)
    stop = threading.Event()
    started = time.monotonic()
    scanners = _start_scanners(workdir, duration, stop)
    daemon = subprocess.Popen(_edge("run", "--config", str(config)), stdout=logs[0], stderr=subprocess.STDOUT)
    try:
        stop.wait(duration)
        stop.set()
        for _, thread in scanners:
            thread.join(timeout=10)
        typed = sum(len(scanner.ground_truth) for scanner, _ in scanners)
        # The last batch window closes, is rolled up, queued and acknowledged within about 15 s.
        say("scanners stopped; waiting for the last aggregates to reach HQ ...")
        _wait(lambda: _hq_scans(hq_db) >= typed, 45)
        status = subprocess.run(_edge("status", "--config", str(config), *(["--json"] if as_json else [])),
                                capture_output=True, text=True, check=False)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon_rc = daemon.wait(timeout=15)
        for scanner, _ in scanners:
            scanner.stop()
        hq.send_signal(signal.SIGTERM)
        hq.wait(timeout=15)
        broker.stop()
        for log in logs:
            log.close()
    summary = subprocess.run(_edge("scans", "--config", str(config), "--summary", "--since", "1d", "--json"),
                             capture_output=True, text=True, check=True)
    stored = {row["device"]: row for row in json.loads(summary.stdout)["scanners"]}
    truth = {name: scanner.ground_truth for (name, *_), (scanner, _) in zip(SCANNERS, scanners, strict=True)}
    checks = {
        name: {
            "typed": len(records),
            "typed_valid": sum(r.valid for r in records),
            "stored": stored.get(name, {}).get("scans", 0),
            "stored_valid": stored.get(name, {}).get("valid", 0),
        }
        for name, records in truth.items()
    }
    sent = _count(db_path, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL")
    unsent = _count(db_path, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    hq_unique = _count(hq_db, "SELECT count(*) FROM messages")
    hq_scans = _hq_scans(hq_db)
    scans_ok = all(c["typed"] == c["stored"] and c["typed_valid"] == c["stored_valid"] for c in checks.values())
    hq_ok = hq_unique >= sent and hq_scans == sum(c["stored"] for c in checks.values())
    ok = daemon_rc == 0 and scans_ok and hq_ok
    figures = {"duration_s": round(time.monotonic() - started, 1), "ok": ok, "scanners": checks,
               "aggregates_sent": sent, "aggregates_unsent_at_stop": unsent, "hq_received_unique": hq_unique,
               "hq_scans": hq_scans, "daemon_exit": daemon_rc, "workdir": str(workdir)}
    if as_json:
        print(json.dumps({**figures, "status": json.loads(status.stdout or "{}")}))
        return 0 if ok else 1
    print("\n$ edge status\n" + status.stdout.rstrip())
    table = subprocess.run(_edge("scans", "--config", str(config), "--summary", "--since", "1d"),
                           capture_output=True, text=True, check=True)
    print("\n$ edge scans --summary\n" + table.stdout.rstrip())
    hq_status = subprocess.run(_edge("hq", "status", "--db", str(hq_db)), capture_output=True, text=True, check=False)
    print("\n$ edge hq status\n" + hq_status.stdout.rstrip())
    print("\nground truth vs store vs HQ:")
    for name, c in checks.items():
        verdict = "ok" if c["typed"] == c["stored"] and c["typed_valid"] == c["stored_valid"] else "MISMATCH"
        print(f"  {name:<10} typed {c['typed']} ({c['typed_valid']} valid)  stored {c['stored']} "
              f"({c['stored_valid']} valid)  {verdict}")
    print(f"  HQ received {hq_unique} unique messages for {sent} acknowledged ({unsent} still queued at stop, "
          f"kept for the next start); scans at HQ {hq_scans}  {'ok' if hq_ok else 'MISMATCH'}")
    print(f"daemon exited with {daemon_rc}; logs in {workdir}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.demo [--duration S] [--workdir DIR] [--json]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.demo", description=__doc__)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds the scanners type (default 30)")
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"), help="where files go (default demo-run)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    args = parser.parse_args(argv)
    return run(args.duration, args.workdir, args.json)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
