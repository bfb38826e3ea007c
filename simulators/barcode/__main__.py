"""Run a simulated serial barcode scanner: ``python -m simulators.barcode --link PATH``."""

import argparse
import itertools
import random
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from drivers.barcode.config import RcnLayout, parse_terminator
from simulators.barcode.codes import random_scan
from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner


def _terminator(text: str) -> bytes:
    try:
        return parse_terminator(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _layout(pattern: str) -> RcnLayout:
    try:
        return RcnLayout(name=pattern, pattern=pattern)
    except ValueError as err:  # pydantic.ValidationError is a ValueError
        raise argparse.ArgumentTypeError(str(err)) from err


def build_parser() -> argparse.ArgumentParser:
    """The command line of the scanner simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.barcode",
        description="Type random barcodes into a pty behind a stable symlink, then write the ground truth.",
    )
    parser.add_argument(
        "--link", type=Path, required=True, help="symlink to create, like /dev/serial/by-id/..."
    )
    parser.add_argument("--rate", type=float, default=5.0, help="scans per second (default 5)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int, help="stop after this many scans")
    limit.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--bad-share", type=float, default=0.05, help="share of invalid scans (default 0.05)")
    parser.add_argument(
        "--terminator",
        type=_terminator,
        default=b"\r",
        help="CR, LF, CRLF or one hex byte like 0x03 (default CR)",
    )
    parser.add_argument(
        "--rcn",
        type=_layout,
        action="append",
        default=[],
        metavar="PATTERN",
        help="in-store RCN layout such as 2IIIIIIPPPPPC (repeatable; match the daemon's rcn_layouts)",
    )
    parser.add_argument("--unplug-at", type=int, help="unplug once after this many scans")
    parser.add_argument(
        "--unplugged-s", type=float, default=2.0, help="seconds to stay unplugged (default 2)"
    )
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
    parser.add_argument("--truth", type=Path, help="write the ground truth here as JSON lines")
    return parser


def _scans(rng: random.Random, bad_share: float, layouts: Sequence[RcnLayout]) -> Iterator[SimScan]:
    while True:
        yield random_scan(rng, bad_share=bad_share, rcn_layouts=layouts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until --count/--duration or SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    timer = threading.Timer(args.duration, stop.set) if args.duration is not None else None

    scans: Iterator[SimScan] = _scans(random.Random(args.seed), args.bad_share, args.rcn)
    if args.count is not None:
        scans = itertools.islice(scans, args.count)
    scanner = PtyScanner(args.link, terminator=args.terminator)
    scanner.start()
    print(f"scanner on {args.link} -> {scanner.slave_path}; waiting for a reader", file=sys.stderr)
    try:
        if timer is not None:
            timer.daemon = True
            timer.start()
        sent = scanner.run(scans, args.rate, stop, unplug_at=args.unplug_at, unplugged_s=args.unplugged_s)
        # Let the reader take the last scans before the pty goes: closing it drops unread bytes.
        scanner.unplug(drain_timeout=2.0)
    finally:
        if timer is not None:
            timer.cancel()
        scanner.stop()
    if args.truth is not None:
        scanner.write_ground_truth(args.truth)
    print(f"sent {sent} scans", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
