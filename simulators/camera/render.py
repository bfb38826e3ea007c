"""Draw a scenario into a video file with cv2.VideoWriter and write its ground truth next to it."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from simulators.camera.homography import Array, FloorMap, floor_map
from simulators.camera.people import ANGLED_FORESHORTEN, FLOOR_BGR, Look, Person, lateral_scale, plan_people
from simulators.camera.scene import DOOR, Scenario
from simulators.camera.truth import GroundTruth, build_truth, truth_path

Image = npt.NDArray[np.uint8]
DIM = 0.7  # brightness before the lights-on event, relative to after it (a +43 % jump)
SHIFT = 4  # sub-pixel bits for cv2 drawing, so foot points are placed to 1/16 px
TEXTURE_PX_PER_M = 100
LIGHT = np.array([-0.6, -0.8])  # image direction the light comes from, for highlights and shadows


@dataclass(frozen=True, eq=False)
class _Sprite:
    look: Look
    first_frame: int
    foot: Array  # (n, 2) image foot points
    scale: Array  # (n,) lateral px per metre
    angle: Array  # (n,) walking direction in the image, degrees


def render(scenario: Scenario, path: Path, *, codec: str = "MJPG", container: str = ".avi") -> GroundTruth:
    """Render the scenario to ``path`` (a directory gets ``<name><container>``) and write ``<stem>.truth.json``."""
    video = path / f"{scenario.name}{container}" if path.is_dir() else path.with_suffix(container)
    fmap = floor_map(scenario.kind, scenario.size)
    people = plan_people(scenario, fmap)
    truth = build_truth(scenario, fmap, people, video.name)
    # FFMPEG's MJPEG encoder ignores VIDEOWRITER_PROP_QUALITY (and rejects it as a constructor parameter); its
    # default gives ~25-30 KB per 640x480 frame, 2.5 grey levels of mean error, a third of CV_MJPEG's size.
    writer = cv2.VideoWriter(str(video), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*codec), scenario.fps, scenario.size)
    if not writer.isOpened():
        raise ValueError(f"this OpenCV build cannot write {codec} into {container} files")
    try:
        for frame in frames(scenario, fmap, people):
            writer.write(frame)
    finally:
        writer.release()
    truth.write(truth_path(video))
    return truth


@dataclass(frozen=True, eq=False)
class Stage:
    """What every clip of one camera shares: the empty floor at gain 1 and a bank of sensor-noise frames."""

    background: Image
    noise_up: Image  # (k, h, w, 3) noise added to a frame
    noise_down: Image  # (k, h, w, 3) noise subtracted from it


def stage(scenario: Scenario, fmap: FloorMap) -> Stage:
    """The scenario's empty scene and noise bank, built once and passed to ``frames`` for many short clips."""
    return _stage(scenario, fmap, np.random.default_rng(scenario.seed + 7919))


def _stage(scenario: Scenario, fmap: FloorMap, rng: np.random.Generator) -> Stage:
    noise = rng.normal(0.0, scenario.noise, (6, scenario.size[1], scenario.size[0], 3)).round()
    return Stage(background(scenario, fmap), np.clip(noise, 0, 255).astype(np.uint8),
                 np.clip(-noise, 0, 255).astype(np.uint8))


def frames(scenario: Scenario, fmap: FloorMap, people: list[Person], shared: Stage | None = None) -> "_FrameIter":
    """The frames of the clip, in order, as BGR uint8 images; ``shared`` reuses another clip's stage (same view)."""
    return _FrameIter(scenario, fmap, people, shared)


class _FrameIter:
    """Iterator over rendered frames; keeps the background, noise bank and per-frame sprite index."""

    def __init__(self, scenario: Scenario, fmap: FloorMap, people: list[Person], shared: Stage | None = None) -> None:
        self.scenario = scenario
        rng = np.random.default_rng(scenario.seed + 7919)
        scene = shared if shared is not None else _stage(scenario, fmap, rng)
        self.background = scene.background
        self.noise_up = scene.noise_up
        self.noise_down = scene.noise_down
        self.noise_pick = rng.integers(0, len(scene.noise_up), scenario.frame_count)
        self.gains = brightness(scenario)
        sprites = [_sprite(p, fmap) for p in people]
        self.active: list[list[tuple[_Sprite, int]]] = [[] for _ in range(scenario.frame_count)]
        for s in sprites:
            for i in range(len(s.foot)):
                self.active[s.first_frame + i].append((s, i))
        self.index = 0

    def __iter__(self) -> "_FrameIter":
        return self

    def __next__(self) -> Image:
        f = self.index
        if f >= self.scenario.frame_count:
            raise StopIteration
        self.index += 1
        frame = self.background.copy()
        here = self.active[f]
        if self.scenario.kind == "angled":
            here = sorted(here, key=lambda item: float(item[0].foot[item[1], 1]))
        if self.scenario.shadows:
            for s, i in here:
                _shadow(frame, self.scenario.kind, s, i)
        for s, i in here:
            (_draw_top_down if self.scenario.kind == "top-down" else _draw_angled)(frame, s, i)
        frame = np.asarray(cv2.convertScaleAbs(frame, alpha=float(self.gains[f])), dtype=np.uint8)
        k = self.noise_pick[f]
        cv2.add(frame, self.noise_up[k], dst=frame)
        cv2.subtract(frame, self.noise_down[k], dst=frame)
        return frame


def brightness(scenario: Scenario) -> Array:
    """Global gain of every frame: slow sinusoidal drift times the lights (dim before lights-on, flicker after)."""
    t = np.arange(scenario.frame_count) / scenario.fps
    phase = np.random.default_rng(scenario.seed + 31).uniform(0, 2 * math.pi)
    gain = 1.0 + scenario.drift * np.sin(2 * math.pi * t / scenario.drift_period_s + phase)
    on = scenario.lights_on_frame
    if on is not None:
        lights = np.where(np.arange(scenario.frame_count) < on, DIM, 1.0)
        if scenario.flicker:
            lights[on + 1:on + 3] = DIM
        gain = gain * lights
    return np.asarray(gain, dtype=np.float64)


def background(scenario: Scenario, fmap: FloorMap) -> Image:
    """The empty scene at gain 1: a tiled, mottled floor texture seen through the view's homography."""
    rng = np.random.default_rng(scenario.seed + 104729)
    w, h = scenario.size
    corners = fmap.to_floor([(0, 0), (w, 0), (w, h), (0, h)])
    lo, hi = corners.min(axis=0) - 0.5, corners.max(axis=0) + 0.5
    tw, th = np.ceil((hi - lo) * TEXTURE_PX_PER_M).astype(int)
    tex = np.empty((th, tw, 3), np.float32)
    tex[:] = FLOOR_BGR
    tile = int(0.6 * TEXTURE_PX_PER_M)
    ny, nx = th // tile + 1, tw // tile + 1
    tints = rng.normal(0, 5, (ny, nx, 1)) + rng.normal(0, 2, (ny, nx, 3))
    tex += np.repeat(np.repeat(tints, tile, axis=0), tile, axis=1)[:th, :tw].astype(np.float32)
    mottle = cv2.resize(rng.normal(0, 9, (ny * 2, nx * 2)).astype(np.float32), (tw, th), interpolation=cv2.INTER_CUBIC)
    tex += mottle[:, :, None]
    tex += cv2.GaussianBlur(rng.normal(0, 10, (th, tw)).astype(np.float32), (0, 0), 1.2)[:, :, None]
    for _ in range(int(tw * th / 40000)):
        centre = (int(rng.integers(tw)), int(rng.integers(th)))
        axes = (int(rng.integers(4, 25)), int(rng.integers(3, 12)))
        stain = tuple(float(c) - rng.uniform(10, 30) for c in FLOOR_BGR)
        cv2.ellipse(tex, centre, axes, float(rng.uniform(0, 180)), 0, 360, stain, -1, cv2.LINE_AA)
    tex[::tile, :] -= 40
    tex[:, ::tile] -= 40
    tex[1::tile, :] -= 25
    tex[:, 1::tile] -= 25
    to_floor = np.array([[1 / TEXTURE_PX_PER_M, 0, lo[0]], [0, 1 / TEXTURE_PX_PER_M, lo[1]], [0, 0, 1]])
    warped = cv2.warpPerspective(np.clip(tex, 0, 255).astype(np.uint8), fmap.floor_to_image @ to_floor, (w, h),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.asarray(warped, dtype=np.uint8)


def _sprite(person: Person, fmap: FloorMap) -> _Sprite:
    foot = fmap.to_image(person.floor)
    step = np.zeros_like(foot)
    if len(foot) > 2:
        step[1:-1] = foot[2:] - foot[:-2]
    angle = np.full(len(foot), np.nan)
    moving = np.linalg.norm(step, axis=1) > 0.8
    angle[moving] = np.degrees(np.arctan2(step[moving, 1], step[moving, 0]))
    valid = np.flatnonzero(~np.isnan(angle))
    if len(valid):  # hold the last heading while standing; start with the first one
        fill = np.maximum.accumulate(np.where(~np.isnan(angle), np.arange(len(angle)), -1))
        angle = np.where(fill >= 0, angle[np.maximum(fill, 0)], angle[valid[0]])
    else:
        angle[:] = 90.0
    return _Sprite(person.look, person.first_frame, foot, lateral_scale(fmap, person.floor), angle)


def _pt(x: float, y: float) -> tuple[int, int]:
    return (round(x * (1 << SHIFT)), round(y * (1 << SHIFT)))


def _ellipse(img: npt.NDArray[np.uint8] | npt.NDArray[np.float32], cx: float, cy: float, ax: float, ay: float,
             angle: float, color: tuple[float, ...] | float) -> None:
    cv2.ellipse(img, _pt(cx, cy), _pt(max(ax, 0.5), max(ay, 0.5)), angle, 0, 360, color, -1, cv2.LINE_AA, SHIFT)


def _shade(color: tuple[int, int, int], factor: float, add: float = 0.0) -> tuple[float, float, float]:
    b, g, r = (min(255.0, c * factor + add) for c in color)
    return (b, g, r)


def _draw_top_down(frame: Image, s: _Sprite, i: int) -> None:
    """Head and shoulders from above: a shaded ellipse across the walking direction and a darker head disc."""
    (x, y), scale, angle, look = s.foot[i], float(s.scale[i]), float(s.angle[i]), s.look
    a, b = 0.5 * look.width_m * scale, 0.5 * look.depth_m * scale
    lx, ly = LIGHT * 0.18
    _ellipse(frame, x, y, b, a, angle, _shade(look.shirt, 0.62))
    _ellipse(frame, x, y, b * 0.8, a * 0.82, angle, _shade(look.shirt, 1.0))
    _ellipse(frame, x + lx * a, y + ly * a, b * 0.4, a * 0.45, angle, _shade(look.shirt, 1.12, 12))
    r = 0.5 * look.head_m * scale
    _ellipse(frame, x, y, r, r, 0.0, _shade(look.hair, 0.8))
    _ellipse(frame, x + lx * r, y + ly * r, r * 0.5, r * 0.5, 0.0, _shade(look.hair, 1.3, 15))


def _draw_angled(frame: Image, s: _Sprite, i: int) -> None:
    """A standing person seen obliquely: an upright shaded body ellipse ending at the foot point, and a head."""
    (x, y), scale, look = s.foot[i], float(s.scale[i]), s.look
    r = 0.5 * look.head_m * scale
    body = look.height_m * scale * ANGLED_FORESHORTEN - 2 * r
    a = 0.5 * look.width_m * scale
    _ellipse(frame, x, y - body / 2, a, body / 2, 0.0, _shade(look.shirt, 0.6))
    _ellipse(frame, x, y - 0.27 * body, 0.62 * a, 0.27 * body, 0.0, _shade(look.trousers, 1.0))
    _ellipse(frame, x - 0.08 * a, y - 0.68 * body, 0.85 * a, 0.28 * body, 0.0, _shade(look.shirt, 1.0))
    _ellipse(frame, x - 0.3 * a, y - 0.72 * body, 0.35 * a, 0.18 * body, 0.0, _shade(look.shirt, 1.12, 12))
    _ellipse(frame, x, y - body - 0.55 * r, r, r, 0.0, _shade(look.hair, 1.0))


def _shadow(frame: Image, kind: str, s: _Sprite, i: int) -> None:
    """Darken a soft blob on the floor, offset away from the light."""
    (x, y), scale, look = s.foot[i], float(s.scale[i]), s.look
    if kind == "top-down":
        cx, cy = x - LIGHT[0] * 0.15 * scale, y - LIGHT[1] * 0.15 * scale
        ax, ay, angle = 0.5 * look.depth_m * scale * 1.2, 0.5 * look.width_m * scale * 1.05, float(s.angle[i])
    else:
        cx, cy, ax, ay, angle = x + 0.2 * scale, y - 0.02 * scale, look.width_m * scale, 0.12 * scale, 0.0
    pad = int(max(ax, ay)) + 8
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(int(cx) - pad, 0), max(int(cy) - pad, 0), min(int(cx) + pad, w), min(int(cy) + pad, h)
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    _ellipse(mask, cx - x0, cy - y0, ax, ay, angle, 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.15 * min(ax, ay) + 1.0)
    roi = frame[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - 0.35 * mask[:, :, None])).astype(np.uint8)


CorruptMode = Literal["garbage", "truncated", "header_only"]


def corrupt_video(path: Path, *, mode: CorruptMode = "truncated", seed: int = 0) -> Path:
    """Write a broken video file: random bytes, a real clip cut off mid-stream, or only its container header."""
    rng = np.random.default_rng(seed)
    if mode == "garbage":
        path.write_bytes(rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
        return path
    scenario = Scenario(name="corrupt", lines=(DOOR,), duration_s=2.0, seed=seed, walkers=2)
    tmp = path.with_name(path.name + ".tmp.avi")
    render(scenario, tmp)
    data = tmp.read_bytes()
    tmp.unlink()
    truth_path(tmp).unlink()
    keep = 2048 if mode == "header_only" else len(data) // 3
    path.write_bytes(data[:keep])
    return path

