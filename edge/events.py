"""Typed events passed from driver threads to the store writer.

Events are slotted dataclasses, not pydantic models: they cross threads on the hot path. Each event class names
the table it lands in (``TABLE``), the attributes that are its columns (``COLUMNS``; a bool is stored as 0/1), and
whether it is raw data that may be shed when the disk runs low (``RAW``). They are not declared ``frozen``: a frozen
dataclass sets each field through ``object.__setattr__`` and costs ~15× more to build (6 µs vs 0.4 µs for ten
fields, measured), which matters at 100k sightings/s. Treat them as immutable all the same.
"""

from dataclasses import dataclass
from typing import ClassVar, Protocol

from edge import const


class Event(Protocol):
    """What the store writer needs from any event: its table, the attributes that are its columns, and whether it
    is raw data (shed first when the disk runs low)."""

    TABLE: ClassVar[str]
    COLUMNS: ClassVar[tuple[str, ...]]
    RAW: ClassVar[bool]


@dataclass(slots=True)
class Scan:
    """One decoded barcode read, valid or not.

    ``ts`` is the event time (epoch seconds) at which the terminator arrived. ``text`` is the payload with the
    AIM prefix stripped (FNC1 kept as ``\\x1d``). ``kind`` is one of ``gtin``, ``gs1``, ``rcn_price``,
    ``rcn_weight``, ``other``. ``gtin`` is the GTIN-14 when one was decoded; ``ai_json`` is a JSON object of
    GS1 Application Identifiers (AI → value) or ``None``. An invalid scan (bad check digit, bad GS1 data)
    has ``valid=False`` and ``error`` says why.
    """

    TABLE: ClassVar[str] = const.TABLE_SCANS
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "ts", "device", "symbology", "text", "kind", "gtin", "valid", "error",
        "price_minor", "weight_g", "ai_json",
    )
    RAW: ClassVar[bool] = True

    ts: float
    device: str
    symbology: str | None
    text: str
    kind: str
    gtin: str | None
    valid: bool
    error: str | None = None
    price_minor: int | None = None
    weight_g: int | None = None
    ai_json: str | None = None



@dataclass(slots=True)
class Sighting:
    """One probe request heard by one sniffer, with the device identifier already a keyed hash.

    ``device`` is the truncated keyed hash of the MAC under the current salt (never the MAC); ``randomized`` is
    the MAC's locally-administered bit; ``oui`` is the vendor prefix of universal MACs only (``None`` for
    randomized ones); ``rssi`` is dBm as received (calibration offsets are applied by the analytics);
    ``fp`` is the IE fingerprint as 16 hex digits; ``seq`` the 802.11 sequence number.
    """

    TABLE: ClassVar[str] = const.TABLE_SIGHTINGS
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "ts", "sniffer", "device", "randomized", "oui", "rssi", "channel", "seq", "fp", "ssid_len",
    )
    RAW: ClassVar[bool] = True

    ts: float
    sniffer: str
    device: str
    randomized: bool
    oui: str | None
    rssi: int | None
    channel: int | None
    seq: int
    fp: str | None
    ssid_len: int



# -- camera windows: a camera driver aggregates in event time and emits these once per closed window ------------
# They land straight in aggregate tables (RAW = False: never shed for disk). The tables' primary keys replace on
# conflict, so a replayed file or a re-emitted window overwrites its row instead of failing the writer's batch.


@dataclass(slots=True)
class CameraTraffic:
    """Crossings of one counting line of one camera in one window [window_start, window_end)."""

    TABLE: ClassVar[str] = const.TABLE_AGG_TRAFFIC
    COLUMNS: ClassVar[tuple[str, ...]] = ("window_start", "window_end", "camera", "line", "in_count", "out_count")
    RAW: ClassVar[bool] = False

    window_start: float
    window_end: float
    camera: str
    line: str
    in_count: int
    out_count: int


@dataclass(slots=True)
class CameraOccupancy:
    """One camera's window summary: entries/exits over its entrance lines, occupancy and people in view.

    ``occupancy`` is the running in − out (clamped at 0, reset at closing time) at the window's last frame;
    ``visible_mean``/``visible_max`` count confirmed tracks in view per processed frame.
    """

    TABLE: ClassVar[str] = const.TABLE_AGG_OCCUPANCY
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "camera", "entries", "exits", "occupancy", "occupancy_max", "visible_mean",
        "visible_max", "frames", "occupancy_resets",
    )
    RAW: ClassVar[bool] = False

    window_start: float
    window_end: float
    camera: str
    entries: int
    exits: int
    occupancy: int
    occupancy_max: int
    visible_mean: float
    visible_max: int
    frames: int
    occupancy_resets: int


@dataclass(slots=True)
class CameraHeatmap:
    """Person-seconds per floor cell seen by one camera in one window, stored sparsely.

    The grid's cell (0, 0) has its corner at (``origin_x``, ``origin_y``) metres; cells are ``cell_m`` square,
    ``nx`` columns by ``ny`` rows. ``cells_json`` is ``[[flat index (iy * nx + ix), seconds], ...]`` for
    non-zero cells only.
    """

    TABLE: ClassVar[str] = const.TABLE_AGG_CAMERA_HEATMAP
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "camera", "origin_x", "origin_y", "cell_m", "nx", "ny", "cells_json",
        "person_seconds",
    )
    RAW: ClassVar[bool] = False

    window_start: float
    window_end: float
    camera: str
    origin_x: float
    origin_y: float
    cell_m: float
    nx: int
    ny: int
    cells_json: str
    person_seconds: float


@dataclass(slots=True)
class CameraZone:
    """Person-seconds one camera saw in one floor zone in one window."""

    TABLE: ClassVar[str] = const.TABLE_AGG_CAMERA_ZONES
    COLUMNS: ClassVar[tuple[str, ...]] = ("window_start", "window_end", "camera", "zone", "person_seconds")
    RAW: ClassVar[bool] = False

    window_start: float
    window_end: float
    camera: str
    zone: str
    person_seconds: float


# -- results of offline tools (`edge camera count`): typed, never stored --------------------------------------


@dataclass(slots=True)
class LineTotal:
    """Crossings of one line over a whole video."""

    name: str
    in_count: int
    out_count: int


@dataclass(slots=True)
class VideoCount:
    """What counting a video file gave: per-line totals, frames decoded and processed, and the speed."""

    video: str
    lines: list[LineTotal]
    frames: int
    processed: int
    fps: float
    duration_s: float
    elapsed_s: float
    processed_fps: float
    decode_errors: int
