"""Scenario description of a simulated people-counting camera, and the standard test set."""

from dataclasses import dataclass
from typing import Literal

ViewKind = Literal["top-down", "angled"]
Direction = Literal["in", "out"]


@dataclass(frozen=True)
class CountLine:
    """A directed counting line in image pixels: crossing to where cross(p2 - p1, pt - p1) > 0 is ``in``."""

    name: str
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def p1(self) -> tuple[float, float]:
        """The start point (x, y)."""
        return (self.x1, self.y1)

    @property
    def p2(self) -> tuple[float, float]:
        """The end point (x, y)."""
        return (self.x2, self.y2)


@dataclass(frozen=True)
class Scenario:
    """Everything that determines a simulated clip; the same scenario always renders the same video and truth."""

    name: str
    lines: tuple[CountLine, ...]
    kind: ViewKind = "top-down"
    size: tuple[int, int] = (640, 480)
    fps: float = 12.0
    duration_s: float = 60.0
    seed: int = 0
    walkers: int = 20  # solo people who walk straight across a line
    groups: int = 0  # groups of 2-3 walking side by side, touching or nearly
    stoppers: int = 0  # walk, stand still for 2-6 s away from the line, walk on
    turn_backs: int = 0  # walk toward a line, turn back 35-100 px before it
    loiterers: int = 0  # dither across a line within the band for 3-8 s, then cross or go back
    lights_on_s: float | None = None  # lights switch from dim (x0.7) to full in one frame at this time
    flicker: bool = False  # the lights go dim again for two frames right after switching on
    drift: float = 0.12  # amplitude of the slow global brightness drift (0.12 = +-12 %)
    drift_period_s: float = 240.0
    shadows: bool = True
    low_contrast: float = 0.15  # share of people dressed close to the floor colour
    noise: float = 2.0  # sensor noise sigma in grey levels
    band_px: float = 15.0  # hysteresis band of the ground-truth crossing rule
    min_gap_m: float = 0.75  # closest approach (centre to centre) of people not walking together

    def __post_init__(self) -> None:
        """Reject scenarios that cannot be rendered."""
        if not self.lines:
            raise ValueError(f"scenario {self.name}: at least one counting line is needed")
        if len({line.name for line in self.lines}) != len(self.lines):
            raise ValueError(f"scenario {self.name}: line names must be unique")
        if self.fps <= 0 or self.duration_s <= 0:
            raise ValueError(f"scenario {self.name}: fps and duration_s must be positive")

    @property
    def frame_count(self) -> int:
        """Number of frames in the rendered video."""
        return round(self.duration_s * self.fps)

    @property
    def lights_on_frame(self) -> int | None:
        """The first frame at full brightness after the lights-on event, if any."""
        return None if self.lights_on_s is None else round(self.lights_on_s * self.fps)


DOOR = CountLine("door", 24, 240, 616, 240)
ANGLED_DOOR = CountLine("door", 40, 270, 600, 270)


def standard_scenarios() -> list[Scenario]:
    """The accuracy set: 11.5 min at 640x480 and 12 fps, every direction of every line crossed at least 20 times."""
    return [
        Scenario(
            name="topdown_entrance", lines=(DOOR,), duration_s=180, seed=101,
            walkers=56, groups=6, stoppers=8, turn_backs=8, loiterers=8,
            lights_on_s=90, flicker=True, drift=0.12, drift_period_s=150,
        ),
        Scenario(
            name="topdown_groups", lines=(DOOR,), duration_s=120, seed=202,
            walkers=22, groups=16, stoppers=4, turn_backs=4, loiterers=4,
            lights_on_s=40, drift=0.15, drift_period_s=100,
        ),
        Scenario(
            name="topdown_two_doors",
            lines=(CountLine("door_a", 24, 240, 296, 240), CountLine("door_b", 616, 240, 344, 240)),
            duration_s=120, seed=303, walkers=76, groups=6, stoppers=6, turn_backs=6, loiterers=8,
            drift=0.10, drift_period_s=120,
        ),
        Scenario(
            name="angled_entrance", kind="angled", lines=(ANGLED_DOOR,), duration_s=180, seed=404,
            walkers=56, groups=6, stoppers=8, turn_backs=8, loiterers=8,
            lights_on_s=120, flicker=True, drift=0.12, drift_period_s=160,
        ),
        Scenario(
            name="topdown_low_contrast", lines=(DOOR,), duration_s=90, seed=505,
            walkers=36, groups=4, stoppers=3, turn_backs=3, loiterers=3,
            low_contrast=0.6, noise=3.0, drift=0.15, drift_period_s=60,
        ),
    ]
