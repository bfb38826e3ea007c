"""Write the standard camera clips and their ground truth: ``python -m simulators.camera --out DIR``."""

import argparse
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from simulators.camera.render import corrupt_video, render
from simulators.camera.scene import Scenario, standard_scenarios
from simulators.camera.truth import GroundTruth, simulate


def build_parser() -> argparse.ArgumentParser:
    """The command line of the camera simulator."""
    names = [s.name for s in standard_scenarios()]
    parser = argparse.ArgumentParser(
        prog="python -m simulators.camera",
        description="Render synthetic people-counting videos with <name>.truth.json ground truth next to each.",
    )
    parser.add_argument("--out", type=Path, help="directory to write the videos and truth files into")
    parser.add_argument("--scenario", action="append", choices=names, metavar="NAME",
                        help=f"render only this scenario (repeatable; default all: {', '.join(names)})")
    parser.add_argument("--jobs", type=int, default=2, help="scenarios rendered in parallel (default 2)")
    parser.add_argument("--codec", default="MJPG", help="fourcc of the video codec (default MJPG)")
    parser.add_argument("--container", default=".avi", help="file suffix choosing the container (default .avi)")
    parser.add_argument("--corrupt", action="store_true", help="also write corrupt_*.avi files for error tests")
    parser.add_argument("--duration", type=float,
                        help="shorten every scenario to this many seconds, scaling its people down to match")
    parser.add_argument("--list", action="store_true", help="print the scenarios with their true counts and exit")
    return parser


def _shorten(scenario: Scenario, seconds: float) -> Scenario:
    ratio = min(1.0, seconds / scenario.duration_s)
    counts = {k: round(getattr(scenario, k) * ratio) for k in ("walkers", "groups", "stoppers", "turn_backs",
                                                               "loiterers")}
    lights = scenario.lights_on_s * ratio if scenario.lights_on_s is not None else None
    return replace(scenario, duration_s=min(seconds, scenario.duration_s), lights_on_s=lights, **counts)


def _render(job: tuple[Scenario, Path, str, str]) -> tuple[GroundTruth, float]:
    scenario, out, codec, container = job
    start = time.perf_counter()
    truth = render(scenario, out, codec=codec, container=container)
    return truth, time.perf_counter() - start


def _summary(truth: GroundTruth) -> str:
    counts = ", ".join(f"{lt.line.name} in {lt.count('in')} out {lt.count('out')}" for lt in truth.lines)
    sc = truth.scenario
    return f"{sc.name}: {sc.kind}, {sc.duration_s:.0f} s at {sc.fps:g} fps, {truth.total_people} people, {counts}"


def main(argv: Sequence[str] | None = None) -> int:
    """Render the chosen scenarios; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    scenarios = [s for s in standard_scenarios() if not args.scenario or s.name in args.scenario]
    if args.duration:
        scenarios = [_shorten(s, args.duration) for s in scenarios]
    if args.list:
        for scenario in scenarios:
            print(_summary(simulate(scenario)))
        return 0
    if args.out is None:
        parser.error("--out is required")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(s, args.out, args.codec, args.container) for s in scenarios]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for truth, seconds in pool.map(_render, jobs):
            print(f"{_summary(truth)} -> {args.out / truth.video} in {seconds:.1f} s")
    if args.corrupt:
        for mode in ("garbage", "truncated", "header_only"):
            print(f"corrupt ({mode}) -> {corrupt_video(args.out / f'corrupt_{mode}.avi', mode=mode)}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
