"""The demo: the real daemon over a simulated store, then the technician's view and the ground-truth check.

For now the store is two serial scanners (a till and an aisle scanner) typing realistic GS1 codes, with one
unplugged and replugged midway. Run with ``edge demo`` or ``python -m simulators.demo``.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from drivers.barcode.config import RcnLayout
from simulators.barcode.codes import random_scan
from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner

RCN_LAYOUTS = (RcnLayout(name="cn-13-price", pattern="2IIIIIIPPPPPC"),
               RcnLayout(name="cn-18-scale", pattern="26IIIIIPPPPPWWWWWC"))
SCANNERS = (("till-1", "CR", b"\r", 4.0), ("aisle-3", "CRLF", b"\r\n", 1.5))


def _config(workdir: Path) -> str:
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


def run(duration: float, workdir: Path, as_json: bool) -> int:
    """Run the demo; returns 0 when every valid scan the scanners typed was stored exactly once."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("edge.db*"):
        old.unlink()
    config = workdir / "store.toml"
    config.write_text(_config(workdir), encoding="utf-8")
    log = (workdir / "daemon.log").open("w", encoding="utf-8")
    say = (lambda *_: None) if as_json else print
    say(f"StoreEdge demo: {len(SCANNERS)} simulated scanners for {duration:.0f} s; files in {workdir}")
    stop = threading.Event()
    started = time.monotonic()
    scanners = _start_scanners(workdir, duration, stop)
    daemon = subprocess.Popen(_edge("run", "--config", str(config)), stdout=log, stderr=subprocess.STDOUT)
    try:
        stop.wait(duration)
        stop.set()
        for _, thread in scanners:
            thread.join(timeout=10)
        time.sleep(1.5)  # let the last scans reach the store and the next heartbeat record them
        status = subprocess.run(_edge("status", "--config", str(config), *(["--json"] if as_json else [])),
                                capture_output=True, text=True, check=False)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon_rc = daemon.wait(timeout=15)
        for scanner, _ in scanners:
            scanner.stop()
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
    ok = daemon_rc == 0 and all(c["typed"] == c["stored"] and c["typed_valid"] == c["stored_valid"]
                                for c in checks.values())
    if as_json:
        print(json.dumps({"duration_s": round(time.monotonic() - started, 1), "ok": ok, "scanners": checks,
                          "daemon_exit": daemon_rc, "status": json.loads(status.stdout or "{}"),
                          "workdir": str(workdir)}))
        return 0 if ok else 1
    print("\n$ edge status\n" + status.stdout.rstrip())
    table = subprocess.run(_edge("scans", "--config", str(config), "--summary", "--since", "1d"),
                           capture_output=True, text=True, check=True)
    print("\n$ edge scans --summary\n" + table.stdout.rstrip())
    print("\nground truth vs store:")
    for name, c in checks.items():
        verdict = "ok" if c["typed"] == c["stored"] and c["typed_valid"] == c["stored_valid"] else "MISMATCH"
        print(f"  {name:<10} typed {c['typed']} ({c['typed_valid']} valid)  stored {c['stored']} "
              f"({c['stored_valid']} valid)  {verdict}")
    print(f"daemon exited with {daemon_rc}; log in {workdir / 'daemon.log'}")
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
