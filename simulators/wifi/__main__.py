"""Write simulated probe traffic: ``python -m simulators.wifi --out DIR --duration 3600 --seed 1``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from simulators.wifi.engine import simulate
from simulators.wifi.feed import node_lines
from simulators.wifi.pcapio import write_pcap, write_pcapng
from simulators.wifi.world import default_world

DEFAULT_START = 1795449600.0  # an hour boundary, so 60 s and 10 min windows are whole


def build_parser() -> argparse.ArgumentParser:
    """The command line of the probe-traffic simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.wifi",
        description="Simulate a store's probe requests: one capture file per sniffer plus truth.json.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write into (created if missing)")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds to simulate (default 3600)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--start", type=float, default=DEFAULT_START, help="start time, Unix seconds")
    parser.add_argument("--fcs", action="store_true", help="append the 802.11 FCS and set the radiotap FCS flag")
    parser.add_argument("--pcapng", action="store_true", help="write pcapng instead of pcap")
    parser.add_argument("--nanosecond", action="store_true", help="nanosecond pcap timestamps (pcap only)")
    parser.add_argument("--randomizing", type=float, default=0.85, help="share of phones that randomize (0-1)")
    parser.add_argument("--phone-share", type=float, default=0.9, help="share of people carrying a phone (0-1)")
    parser.add_argument("--arrivals", type=float, default=60.0, help="shoppers per hour (default 60)")
    parser.add_argument("--passersby", type=float, default=240.0, help="passersby per hour (default 240)")
    parser.add_argument("--staff", type=int, default=4, help="staff on shift (default 4)")
    parser.add_argument("--node-feed", action="store_true", help="also write each sniffer's node feed as .jsonl")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator and write its files."""
    args = build_parser().parse_args(argv)
    began = time.perf_counter()
    sim = simulate(default_world(), args.start, args.duration, args.seed, fcs=args.fcs, randomizing=args.randomizing,
                   phone_share=args.phone_share, arrivals_per_h=args.arrivals, passersby_per_h=args.passersby,
                   staff=args.staff)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frames in sim.frames.items():
        if args.pcapng:
            write_pcapng(args.out / f"{name}.pcapng", frames)
        else:
            write_pcap(args.out / f"{name}.pcap", frames, nanosecond=args.nanosecond)
        if args.node_feed:
            with open(args.out / f"{name}.jsonl", "wb") as feed:
                feed.writelines(node_lines(sim.captures[name], name))
    sim.write_truth(args.out / "truth.json")
    counts = ", ".join(f"{name} {len(caps)}" for name, caps in sim.captures.items())
    print(f"wrote {args.out}: frames {counts}; {sim.truth.summary['shoppers']} shoppers, "
          f"{sim.truth.summary['phones']} phones; {time.perf_counter() - began:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
