"""Write one simulated store day: ``python -m simulators.store --date 2026-11-22 --seed 1 --out DIR [--hours 8-20]``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from simulators.store.camera import LEAD_M, LEAD_S, TAIL_M
from simulators.store.generate import generate
from simulators.store.site import DEFAULT_CONFIG

_HOURS = re.compile(r"^(\d{1,2})(?::(\d{2}))?-(\d{1,2})(?::(\d{2}))?$")


def hours_arg(text: str) -> tuple[float, float]:
    """``08-20`` or ``08:30-19:45`` as local hours (8.0, 20.0)."""
    match = _HOURS.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"hours must look like 08-20 or 08:30-19:45, not {text!r}")
    h0, m0, h1, m1 = match.groups()
    start, end = int(h0) + int(m0 or 0) / 60, int(h1) + int(m1 or 0) / 60
    if not 0 <= start < end <= 24:
        raise argparse.ArgumentTypeError(f"hours {text!r}: need 0 <= open < close <= 24")
    return start, end


def build_parser() -> argparse.ArgumentParser:
    """The command line of the store-day simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.store",
        description="Simulate one store day from one ground truth: truth.json, a pcap per sniffer, door-camera "
                    "clips, till scans, ESL price changes and manifest.json.",
    )
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="the day, YYYY-MM-DD (store-local)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write into (created if missing)")
    parser.add_argument("--hours", type=hours_arg, help="opening hours, e.g. 08-20 (default: the config's for the day)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="store config (default demo-store.toml)")
    parser.add_argument("--traffic", type=float, default=1.0, help="scale of the shopper arrival curve (default 1)")
    parser.add_argument("--no-video", action="store_true", help="skip the door-camera clips (fast)")
    parser.add_argument("--clip-lead-s", type=float, default=LEAD_S,
                        help=f"extra seconds before each crossing burst (default {LEAD_S})")
    parser.add_argument("--clip-lead-m", type=float, default=LEAD_M,
                        help=f"metres a walker is before the line when their clip starts (default {LEAD_M}; 1.5 for "
                             "a counter that starts afresh on every clip)")
    parser.add_argument("--clip-tail-m", type=float, default=TAIL_M,
                        help=f"metres the last walker is past the line when the clip ends (default {TAIL_M})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the day and print a one-line summary."""
    args = build_parser().parse_args(argv)
    manifest = generate(args.out, day=args.date, seed=args.seed, hours=args.hours, config=args.config,
                        video=not args.no_video, lead_s=args.clip_lead_s, lead_m=args.clip_lead_m,
                        tail_m=args.clip_tail_m, traffic=args.traffic)
    s, cam = manifest["summary"], manifest["camera"]
    print(f"wrote {args.out}: {s['entries']} entries, {s['transactions']} transactions, {s['passersby']} passersby; "
          f"{sum(manifest['wifi']['frames'].values())} probe frames; {cam['clips']} clips, {cam['frames']} frames "
          f"({cam['seconds'] / 60:.1f} min); {manifest['tills']['count']} scans; "
          f"{manifest['timings_s']['total']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
