"""``generate()``: one simulated store day written out — truth, pcaps, door clips, till scans, ESL updates, manifest.

Layout of the output directory (every path in ``manifest.json`` is relative to it)::

    manifest.json        what is where, the date, time zone, span, store config and seeds
    truth.json           the ground truth (see ``simulators.store.truth``)
    paths.jsonl          every shopper's and staff member's true path: waypoints, linear in between
    wifi/<sniffer>.pcap  radiotap probe requests per sniffer over the span; wifi/devices.json: every MAC used
    entrance/*.avi       the door camera's clips (see ``simulators.store.camera``) and entrance/clips.json
    tills.jsonl          item scans (see ``simulators.store.tills``)
    esl_updates.jsonl    the day's price changes (see ``simulators.store.esl``)
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from simulators.store.camera import LEAD_M, LEAD_S, TAIL_M, plan_clips, render_clips
from simulators.store.catalog import catalog, esl_updates
from simulators.store.day import simulate_day
from simulators.store.esl import write_esl
from simulators.store.model import StoreDay
from simulators.store.site import DEFAULT_CONFIG, load_site
from simulators.store.tills import write_tills
from simulators.store.truth import build_truth
from simulators.store.wifi import probe_day, write_probe_day


def generate(out: Path, *, day: date, seed: int, hours: tuple[float, float] | None = None,
             config: Path = DEFAULT_CONFIG, video: bool = True, lead_s: float = LEAD_S, lead_m: float = LEAD_M,
             tail_m: float = TAIL_M, **knobs: Any) -> dict[str, Any]:
    """Simulate the day and write every output into ``out``; returns the manifest (also written)."""
    timings: dict[str, float] = {}
    began = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    out.mkdir(parents=True, exist_ok=True)
    site = load_site(config)
    store_day = simulate_day(site, day, seed, hours, **knobs)
    lap("day")
    truth = build_truth(store_day)
    (out / "truth.json").write_text(json.dumps(truth, separators=(",", ":")), encoding="utf-8")
    _write_paths(store_day, out / "paths.jsonl")
    lap("truth")
    probes = probe_day(store_day)
    pcaps = write_probe_day(probes, out / "wifi")
    lap("wifi")
    clip_index: dict[str, Any] = {"clips": [], "total_frames": 0, "total_seconds": 0.0}
    if video:
        clip_index = render_clips(store_day, plan_clips(store_day, lead_s=lead_s, lead_m=lead_m, tail_m=tail_m),
                                  out / "entrance")
    lap("camera")
    scans = write_tills(store_day, out / "tills.jsonl")
    local_day = datetime.combine(day, datetime.min.time(), site.tz)
    updates = [u for u in esl_updates(catalog(seed), local_day, seed)
               if store_day.start_ts <= u.ts < store_day.end_ts]
    write_esl(updates, out / "esl_updates.jsonl", site.tz)
    lap("tills_esl")
    camera = site.camera
    manifest = {
        "version": 1,
        "store_id": site.config.store_id,
        "date": day.isoformat(),
        "timezone": site.config.timezone,
        "hours": [store_day.open_ts, store_day.close_ts],
        "span": {"start_ts": store_day.start_ts, "end_ts": store_day.end_ts},
        "config": {"path": str(site.config_path), "sha256": hashlib.sha256(site.config_path.read_bytes()).hexdigest()},
        "seed": seed,
        "seeds": {"day": seed, "wifi": f"{seed}:device:<person>", "camera": f"{seed * 100_003} + clip index"},
        "knobs": {name: getattr(store_day.knobs, name) for name in store_day.knobs.__dataclass_fields__},
        "truth": "truth.json",
        "paths": "paths.jsonl",
        "wifi": {
            "pcaps": {name: str(path.relative_to(out)) for name, path in pcaps.items()},
            "devices": "wifi/devices.json",
            "frames": {name: len(caps) for name, caps in probes.captures.items()},
        },
        "camera": {
            "device": camera.device, "dir": "entrance", "index": "entrance/clips.json" if video else None,
            "fps": camera.fps, "size": list(camera.size),
            "clip": {"lead_s": lead_s, "lead_m": lead_m, "tail_m": tail_m},
            "clips": len(clip_index["clips"]), "frames": clip_index["total_frames"],
            "seconds": clip_index["total_seconds"],
        },
        "tills": {"scans": "tills.jsonl", "count": scans, "scanners": sorted(site.tills),
                  "transactions": len(store_day.transactions)},
        "esl": {"updates": "esl_updates.jsonl", "count": len(updates)},
        "summary": truth["summary"],
        "timings_s": {**timings, "total": round(time.perf_counter() - began, 3)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _write_paths(day: StoreDay, path: Path) -> None:
    """One line per shopper and staff member: id, kind, party and waypoints (ts, x, y)."""
    with open(path, "w", encoding="utf-8") as lines:
        for person in (*day.shoppers, *day.staff):
            lines.write(json.dumps({
                "person": person.pid, "kind": person.kind, "party": day.party_of.get(person.pid),
                "ts": [round(t, 3) for t in person.ts], "x": [round(x, 3) for x in person.xs],
                "y": [round(y, 3) for y in person.ys],
            }, separators=(",", ":")) + "\n")
