"""Run a fake OEPL access point: ``python -m simulators.esl --tags 2000 --port 8080 --checkin-s 40 --seed 1``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from simulators.esl.ap import FakeAP


def build_parser() -> argparse.ArgumentParser:
    """The command line of the AP simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.esl",
        description="Serve a simulated OpenEPaperLink AP (HTTP + /ws) with a fleet of checking-in tags.",
    )
    parser.add_argument("--tags", type=int, default=2000, help="number of simulated tags (default 2000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port, 0 for any free port (default 8080)")
    parser.add_argument("--checkin-s", type=float, default=40.0, help="tag check-in interval in s (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet (default 1)")
    parser.add_argument("--upload-s", type=float, default=0.05, help="flash write time per upload in s (default 0.05)")
    parser.add_argument("--failing-share", type=float, default=0.0, help="share of tags whose transfers time out")
    parser.add_argument("--low-battery-share", type=float, default=0.02, help="share of tags below 2400 mV")
    parser.add_argument("--transfer-kbps", type=float, default=5.0, help="radio transfer speed, kB/s (default 5)")
    parser.add_argument("--sys-interval-s", type=float, default=5.0, help="seconds between ws sys messages")
    parser.add_argument("--maxsleep", type=int, default=10, help="AP maxsleep setting in minutes (default 10)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until --duration, SIGINT or SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    ap = FakeAP(args.tags, seed=args.seed, checkin_s=args.checkin_s, upload_s=args.upload_s,
                failing_share=args.failing_share, low_battery_share=args.low_battery_share,
                transfer_kbps=args.transfer_kbps, sys_interval_s=args.sys_interval_s, maxsleep_min=args.maxsleep,
                host=args.host, port=args.port)
    ap.start()
    print(f"fake OEPL AP with {args.tags} tags at {ap.url} (websocket {ap.url.replace('http', 'ws', 1)}/ws)",
          file=sys.stderr, flush=True)
    try:
        stop.wait(args.duration)
    finally:
        ap.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = ap.stats
    print(f"stopped: {stats['checkins']} check-ins, {stats['uploads_ok']} uploads, "
          f"{stats['transfers_ok']} transfers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
