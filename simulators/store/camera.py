"""The door camera's day: short clips around bursts of door crossings, drawn by the camera simulator's renderer.

Only door traffic ever enters the camera's view (see ``site``), so a clip holds exactly the parties crossing in
it, walking side by side as they truly did. A clip starts ``LEAD_S + LEAD_M / speed`` before its first crossing
and ends ``TAIL_M / speed`` after its last one; windows closer than ``MERGE_GAP_S`` are one clip, so nobody in
view during one clip is still in view when the next starts (and every person drawn crosses in their clip). The
day's first clip is an empty warm-up. Frame ``i`` of a clip happened at ``start_ts + i / fps`` on the day's
12 fps lattice, and each file's mtime is ``start_ts + frames / fps``, so the camera driver's file rule
(start = mtime - duration) gives every frame its true time.

Why so tight: a day has ~1,600 party crossings and the clips must stay near 40 minutes. Walkers therefore appear
``LEAD_M`` = 0.6 m before the line, which a counter that carries its background model from clip to clip counts
as well as the camera simulator's long clips (the whole day of seed 1: 1,069 in and 1,065 out counted for 1,068
each way). A counter that starts afresh on every clip spends its first 7 frames learning the floor; for one, use
``lead_m=1.5`` (about 55 minutes of video; it then counted 147 of 148 in and 121 of 122 out in the 17:00 hour).

Files in ``entrance/``: ``<local start, YYYYmmddTHHMMSS>.avi`` (MJPG, 640 x 240) with the camera simulator's
``.truth.json`` beside it, and ``clips.json`` listing every clip with its start, frames and true crossings.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulators.camera.people import Person as Walker
from simulators.camera.render import Stage, frames, stage
from simulators.camera.truth import GroundTruth, build_truth, truth_path
from simulators.store.avi import write_mjpeg_avi
from simulators.store.model import DoorEvent, StoreDay
from simulators.store.site import BODY_REACH_M

LEAD_S = 0.0  # extra seconds before each burst, on top of LEAD_M
LEAD_M = 0.6
TAIL_M = 0.6
MERGE_GAP_S = 2.0
WARMUP_FRAMES = 24  # an empty first clip, so the counter has learnt the floor before the first crossing
WARMUP_BEFORE_S = 60.0
JPEG_QUALITY = 75
SWAY_M = 0.03  # side-to-side sway of a walker, as the camera simulator draws it


@dataclass(frozen=True, slots=True)
class Clip:
    """One clip: when its first frame happened, how many frames, and the door crossings it holds."""

    name: str
    start_ts: float
    frames: int
    fps: float
    crossings: tuple[DoorEvent, ...]

    @property
    def end_ts(self) -> float:
        """When the clip ends: the file's mtime."""
        return self.start_ts + self.frames / self.fps


def plan_clips(day: StoreDay, *, lead_s: float = LEAD_S, lead_m: float = LEAD_M, tail_m: float = TAIL_M,
               merge_gap_s: float = MERGE_GAP_S, warmup_frames: int = WARMUP_FRAMES) -> list[Clip]:
    """The day's clips: an empty warm-up clip, then one window per party crossing the door, merged when close."""
    fps = day.site.camera.fps
    crossings: dict[tuple[int, str], list[DoorEvent]] = {}
    for event in day.door:
        crossings.setdefault((event.party, event.direction), []).append(event)
    windows = sorted((min(e.ts for e in es) - lead_s - lead_m / es[0].speed,
                      max(e.ts for e in es) + tail_m / es[0].speed, es) for es in crossings.values())
    merged: list[tuple[float, float, list[DoorEvent]]] = []
    for lo, hi, events in windows:
        if merged and lo - merged[-1][1] < merge_gap_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi), merged[-1][2] + events)
        else:
            merged.append((lo, hi, list(events)))
    if merged and warmup_frames:
        lo = merged[0][0] - WARMUP_BEFORE_S
        merged.insert(0, (lo, lo + warmup_frames / fps, []))
    clips: list[Clip] = []
    names: set[str] = set()
    for lo, hi, events in merged:
        first = math.floor((lo - day.start_ts) * fps)
        start = day.start_ts + first / fps
        name = datetime.fromtimestamp(start, day.site.tz).strftime("%Y%m%dT%H%M%S")
        while name in names:
            name += "b"
        names.add(name)
        clips.append(Clip(name, start, math.ceil((hi - start) * fps), fps,
                          tuple(sorted(events, key=lambda e: (e.ts, e.person)))))
    return clips


def walkers(day: StoreDay, clip: Clip) -> list[Walker]:
    """Everyone in the camera's view during the clip, as the camera simulator's people (one floor point a frame)."""
    site = day.site
    reach = max(abs(site.camera.view[1]), abs(site.camera.view[3])) + BODY_REACH_M + 0.1
    out: list[Walker] = []
    slowest = min((e.speed for e in day.door), default=1.0)
    times = [e.ts for e in day.door]
    lo = bisect.bisect_left(times, clip.start_ts - reach / slowest)
    hi = bisect.bisect_right(times, clip.end_ts + reach / slowest)
    for event in day.door[lo:hi]:
        seen = reach / event.speed
        if event.ts + seen < clip.start_ts or event.ts - seen > clip.end_ts:
            continue
        i0 = max(0, math.ceil((event.ts - seen - clip.start_ts) * clip.fps))
        i1 = min(clip.frames - 1, math.floor((event.ts + seen - clip.start_ts) * clip.fps))
        if i1 < i0:
            continue
        person = day.person(event.person)
        t = clip.start_ts + np.arange(i0, i1 + 1) / clip.fps
        phase = (zlib.crc32(event.person.encode()) % 628) / 100.0
        floor = np.stack([np.interp(t, person.ts, person.xs) + SWAY_M * np.sin(2 * math.pi * t + phase),
                          np.interp(t, person.ts, person.ys)], axis=1)
        party = day.parties[event.party]
        group = len(party.members) > 1
        out.append(Walker(len(out), "group" if group else "walker", party.party if group else None,
                          site.camera.line.name, day.looks[event.person], i0, floor))
    return out


def render_clip(day: StoreDay, clip: Clip, folder: Path, shared: Stage, seed: int) -> GroundTruth:
    """Draw one clip into ``folder/<name>.avi`` with its truth beside it; the file's mtime is the clip's end."""
    camera = day.site.camera
    scenario = camera.scenario(clip.name, clip.frames, seed)
    people = walkers(day, clip)
    video = folder / f"{clip.name}.avi"
    jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
             for frame in frames(scenario, camera.fmap, people, shared)]
    write_mjpeg_avi(video, jpegs, camera.size, camera.fps)
    truth = build_truth(scenario, camera.fmap, people, video.name)
    truth.write(truth_path(video))
    end_ns = round(clip.end_ts * 1e9)
    os.utime(video, ns=(end_ns, end_ns))
    return truth


def render_clips(day: StoreDay, clips: list[Clip], folder: Path) -> dict[str, Any]:
    """Render every clip and write ``clips.json``; returns that index."""
    folder.mkdir(parents=True, exist_ok=True)
    camera = day.site.camera
    shared = stage(camera.scenario("stage", 1, day.seed), camera.fmap)
    entries = []
    for number, clip in enumerate(clips):
        truth = render_clip(day, clip, folder, shared, day.seed * 100_003 + number)
        counted = {(c.person, c.direction) for lt in truth.lines for c in lt.crossings}
        entries.append({
            "file": f"{clip.name}.avi", "start_ts": clip.start_ts, "end_ts": clip.end_ts, "frames": clip.frames,
            "in": sum(e.direction == "in" for e in clip.crossings),
            "out": sum(e.direction == "out" for e in clip.crossings),
            "rule_counts": {"in": sum(d == "in" for _, d in counted), "out": sum(d == "out" for _, d in counted)},
            "crossings": [{"ts": round(e.ts, 3), "direction": e.direction, "person": e.person, "party": e.party,
                           "frame": math.ceil((e.ts - clip.start_ts) * clip.fps)} for e in clip.crossings],
        })
    index = {
        "camera": camera.device, "line": camera.line.name, "fps": camera.fps, "size": list(camera.size),
        "homography": {"image_points": [list(p) for p in camera.fmap.image_points],
                       "floor_points": [list(p) for p in camera.fmap.floor_points]},
        "clips": entries, "total_frames": sum(c.frames for c in clips),
        "total_seconds": round(sum(c.frames for c in clips) / camera.fps, 3),
    }
    (folder / "clips.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return index
