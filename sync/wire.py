"""The MQTT wire contract: versioned pydantic models of every payload StoreEdge sends or accepts.

HQ validates with the same models; ``docs/schema/*.json`` are generated from them (``python -m sync.schema``) and a
test fails when they drift. Times are ISO 8601 in UTC. A payload over the configured size is zlib-compressed
and its MQTT 5 content type says so (``CONTENT_TYPE_ZLIB``); otherwise it is ``CONTENT_TYPE_JSON``.
"""

import zlib
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_ZLIB = "application/json+zlib"
WIRE_VERSION = 1


class WireModel(BaseModel):
    """Base of wire payloads: unknown fields are rejected so a contract change is never silent."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- aggregate rows, one model per kind -------------------------------------------------------------------------


class ScansRow(WireModel):
    """Scans of one scanner in one rollup window."""

    device: str = Field(description="Scanner name from the store config")
    window_start: AwareDatetime = Field(description="Start of the rollup window")
    window_end: AwareDatetime = Field(description="End of the rollup window (exclusive)")
    scans: int = Field(ge=0, description="Scans read, valid or not")
    valid: int = Field(ge=0, description="Scans with valid check digits and data")
    invalid: int = Field(ge=0, description="Scans stored as invalid (bad check digit, bad GS1 data, noise)")
    distinct_gtins: int = Field(ge=0, description="Distinct GTINs among the valid scans")


class DeviceHealthRow(WireModel):
    """Health of one device at the end of the window."""

    device: str = Field(description="Device name from the store config")
    kind: str = Field(description="Driver kind, e.g. barcode")
    state: Literal["ok", "degraded", "unavailable"] = Field(description="Health state")
    reason: str | None = Field(default=None, description="Why it is not ok")
    events: int = Field(ge=0, description="Events since the daemon started")
    reconnects: int = Field(ge=0, description="Reconnects since the daemon started")
    counters: dict[str, int] = Field(default_factory=dict, description="Driver counters (invalid scans, drops, ...)")


class GatewayHealthRow(WireModel):
    """Health of the gateway itself."""

    uptime_s: float = Field(ge=0, description="Seconds since the daemon started")
    version: str = Field(description="StoreEdge software version")
    free_disk_bytes: int = Field(description="Free disk where the database lives")
    disk_low: bool = Field(description="Raw events are being shed for lack of disk")
    dropped_queue_full: int = Field(ge=0, description="Events dropped because the writer queue was full")
    shed_low_disk: int = Field(ge=0, description="Raw events shed for lack of disk")
    outbox_backlog: int = Field(ge=0, description="Messages waiting for HQ")
    outbox_shed: int = Field(ge=0, description="Detail messages shed from the outbox so far")


class PresenceRow(WireModel):
    """WiFi presence in one window: devices heard inside the store and the persons estimated from them."""

    window_start: AwareDatetime = Field(description="Start of the presence window")
    window_end: AwareDatetime = Field(description="End of the presence window (exclusive)")
    frames: int = Field(ge=0, description="Probe requests heard in the window, all sniffers")
    devices: int = Field(ge=0, description="Distinct device ids above the RSSI gate (randomized ids count per burst)")
    stable_devices: int = Field(
        ge=0, description="Universal-MAC devices above the gate, staff and infrastructure excluded"
    )
    randomized_clusters: int = Field(ge=0, description="Distinct IE-fingerprint clusters among randomized MACs")
    probe_rate: float = Field(ge=0, description="Probe requests per second")
    persons_estimate: float = Field(ge=0, description="Estimated persons present (calibrated)")


class VisitsRow(WireModel):
    """Visits of stable devices that ended in one window (a measured subset of devices, not all people)."""

    window_start: AwareDatetime = Field(description="Start of the window")
    window_end: AwareDatetime = Field(description="End of the window (exclusive)")
    visitors: int = Field(ge=0, description="Visits that lasted at least the visitor minimum (default 5 min)")
    passersby: int = Field(ge=0, description="Devices in range for less than the visitor minimum")
    capture_rate: float | None = Field(ge=0, le=1, description="visitors / (visitors + passersby); null when both 0")
    repeat_visitors: int = Field(ge=0, description="Visitors seen on an earlier visit within the same salt period")
    dwell_buckets: dict[str, int] = Field(
        description="Visitors per dwell bucket, e.g. '5-20m', '20-60m', '1-6h', '6h+'"
    )


class ZonesRow(WireModel):
    """WiFi dwell in one floor-plan zone in one window."""

    window_start: AwareDatetime = Field(description="Start of the window")
    window_end: AwareDatetime = Field(description="End of the window (exclusive)")
    zone: str = Field(description="Zone name from the store's floor plan")
    device_seconds: float = Field(ge=0, description="Seconds devices spent in the zone (strongest sniffer)")
    devices: int = Field(ge=0, description="Distinct devices in the zone")


class TrafficRow(WireModel):
    """People counted crossing one line of one camera in one window, with the camera's occupancy and view."""

    window_start: AwareDatetime = Field(description="Start of the window")
    window_end: AwareDatetime = Field(description="End of the window (exclusive)")
    camera: str = Field(description="Camera name from the store config")
    line: str = Field(description="Counting line name from the camera's config")
    in_count: int = Field(ge=0, description="Crossings in the line's 'in' direction")
    out_count: int = Field(ge=0, description="Crossings in the line's 'out' direction")
    occupancy: int = Field(ge=0, description="The camera's running in − out over its entrance lines at the "
                                             "window's end (clamped at 0, reset at closing time)")
    visible_mean: float = Field(ge=0, description="People in the camera's view, mean over processed frames")
    visible_max: int = Field(ge=0, description="People in the camera's view, most at once")


class HeatmapRow(WireModel):
    """Person-seconds per floor cell seen by one camera in one window; only non-zero cells are listed."""

    window_start: AwareDatetime = Field(description="Start of the window")
    window_end: AwareDatetime = Field(description="End of the window (exclusive)")
    camera: str = Field(description="Camera name from the store config")
    origin: tuple[float, float] = Field(description="[x, y] floor metres of the corner of cell 0")
    cell_m: float = Field(gt=0, description="Cell size in metres")
    nx: int = Field(ge=1, description="Columns of the grid (along x)")
    ny: int = Field(ge=1, description="Rows of the grid (along y)")
    cells: list[tuple[int, float]] = Field(
        description="[[index, seconds], ...]: row-major cell index (iy * nx + ix) and person-seconds"
    )
    person_seconds: float = Field(ge=0, description="Sum of the cells")


class EslFailure(WireModel):
    """One label update that failed, and why."""

    label: str = Field(description="Label id as the access point prints it (16 hex digits; equipment, not personal)")
    gtin: str = Field(description="GTIN-14 the label shows")
    command_id: str | None = Field(description="The esl/update command it came from (null: pairing or CLI)")
    reason: str = Field(description="Why it failed, e.g. 'transfer timed out 2 time(s) (RSSI -91 dBm, ...)'")


class EslCommandProgress(WireModel):
    """Where one esl/update command stands, for commands with labels finished in the window."""

    command_id: str = Field(description="The esl/update command id")
    confirmed: int = Field(ge=0, description="Its label updates confirmed so far (the label showed it)")
    failed: int = Field(ge=0, description="Its label updates failed so far")
    open: int = Field(ge=0, description="Its label updates still queued, sent or pending")


class EslRow(WireModel):
    """One ESL access point in one window: label health at the window's end, update outcomes within it."""

    window_start: AwareDatetime = Field(description="Start of the window")
    window_end: AwareDatetime = Field(description="End of the window (exclusive)")
    ap: str = Field(description="Access point (device) name from the store config")
    ap_state: str = Field(description="online, rebooting, offline, coming_online, ... or unknown")
    labels: int = Field(ge=0, description="Labels the AP lists")
    low_battery: int = Field(ge=0, description="Labels below the low-battery threshold (AP sentinels excluded)")
    timed_out: int = Field(ge=0, description="Labels past the AP's time-out rule (overdue check-in and silent)")
    missing: int = Field(ge=0, description="Labels the AP no longer lists (kept by the gateway)")
    confirmed: int = Field(ge=0, description="Label updates confirmed in the window")
    failed: int = Field(ge=0, description="Label updates failed in the window")
    open_updates: int = Field(ge=0, description="Label updates queued, sent or pending at the window's end")
    failures: list[EslFailure] = Field(description="The window's failed updates (at most 200)")
    commands: list[EslCommandProgress] = Field(description="Progress of commands with updates finished in the window")


class FootfallRow(WireModel):
    """The store in one fused window: camera traffic and occupancy; visitors, quick visits and passersby in persons
    (WiFi counts calibrated by the camera); till transactions and conversion. Null = that source is not in the
    store."""

    window_start: AwareDatetime = Field(description="Start of the fused window (traffic.window_s, default 15 min)")
    window_end: AwareDatetime = Field(description="End of the fused window (exclusive)")
    entries: int | None = Field(ge=0, description="People in through the entrance lines (Σ of agg/traffic 'in')")
    exits: int | None = Field(ge=0, description="People out through the entrance lines")
    occupancy: int | None = Field(ge=0, description="People in the store at the window's end (Σ over cameras)")
    occupancy_mean: float | None = Field(ge=0, description="People in the store, time-averaged over the window")
    occupancy_max: int | None = Field(ge=0, description="Most people in the store at once in the window")
    person_seconds: float = Field(ge=0, description="Time people spent in the store in the window (occupancy × "
                                                    "time; the WiFi persons estimate without a camera)")
    came_in: float = Field(ge=0, description="People who came in: the entries (WiFi visits inside × "
                                             "persons_factor without a camera)")
    visitors: float = Field(ge=0, description="People who came in and stayed at least wifi.visits.visitor_min_s: "
                                              "wifi_visitors × persons_factor (the entries without WiFi)")
    quick_visits: float | None = Field(ge=0, description="People who came in for less: wifi_quick × persons_factor")
    passersby: float | None = Field(ge=0, description="People who passed the store without coming in: "
                                                      "wifi_passersby × persons_factor (null without WiFi)")
    capture_rate: float | None = Field(ge=0, le=1, description="came_in / (came_in + passersby); null when unknown "
                                                               "or both 0")
    wifi_visitors: int | None = Field(ge=0, description="WiFi visits (stable devices) that started in the window "
                                                        "and lasted at least the visitor minimum")
    wifi_quick: int | None = Field(ge=0, description="WiFi visits that started in the window and lasted from "
                                                     "traffic.passerby_max_s to the visitor minimum")
    wifi_passersby: int | None = Field(ge=0, description="WiFi visits that started in the window and lasted less "
                                                         "than traffic.passerby_max_s")
    persons_factor: float = Field(gt=0, description="Persons per WiFi visit inside: camera entries ÷ (wifi_visitors "
                                                    "+ wifi_quick), smoothed over hours (the hour's value)")
    transactions: int | None = Field(ge=0, description="Till transactions started in the window (null: no tills)")
    conversion: float | None = Field(ge=0, description="transactions / came_in; null without tills or nobody in")
    entrances: list[str] = Field(description="'camera/line' of the entrance lines counted; their agg/traffic rows "
                                             "of the same batch window give traffic per entrance")


class DwellRow(WireModel):
    """How long people stayed: WiFi visits inside (quick visits and visitors) that started in one fused window, by
    dwell bin."""

    window_start: AwareDatetime = Field(description="Start of the fused window")
    window_end: AwareDatetime = Field(description="End of the fused window (exclusive)")
    wifi_visits: int = Field(ge=0, description="WiFi visits inside (at least traffic.passerby_max_s) that started "
                                               "in the window (stable devices)")
    mean_dwell_s: float | None = Field(ge=0, description="Their mean dwell in seconds; null without visits")
    visits: dict[str, int] = Field(description="Visits per dwell bin in minutes: '0-5', '5-10', '10-15', '15-20', "
                                               "'20-30', '30-45', '45-60', '60-90', '90-120', '120+'")
    persons: dict[str, float] = Field(description="The same bins in persons (visits × persons_factor)")


class ZoneDwellRow(WireModel):
    """Person-seconds in one floor-plan zone in one fused window (the fused floor heatmap summed over the zone)."""

    window_start: AwareDatetime = Field(description="Start of the fused window")
    window_end: AwareDatetime = Field(description="End of the fused window (exclusive)")
    zone: str = Field(description="Zone name from the store's floor plan")
    person_seconds: float = Field(ge=0, description="Time people spent in the zone")
    share: float | None = Field(ge=0, le=1, description="The zone's share of all zones' person-seconds")
    device_seconds: float | None = Field(ge=0, description="The WiFi input: device-seconds in the zone (agg/zones); "
                                                           "null without WiFi")


class FloorHeatmapRow(WireModel):
    """The fused floor heatmap of one fused window: person-seconds per cell of the whole floor; non-zero cells."""

    window_start: AwareDatetime = Field(description="Start of the fused window")
    window_end: AwareDatetime = Field(description="End of the fused window (exclusive)")
    origin: tuple[float, float] = Field(description="[x, y] floor metres of the corner of cell 0: the floor's corner")
    cell_m: float = Field(gt=0, description="Cell size in metres (traffic.heatmap_cell_m)")
    nx: int = Field(ge=1, description="Columns of the grid (along x, the floor's width)")
    ny: int = Field(ge=1, description="Rows of the grid (along y, the floor's depth)")
    cells: list[tuple[int, float]] = Field(
        description="[[index, seconds], ...]: row-major cell index (iy * nx + ix) and person-seconds (≥ 0.05)"
    )
    person_seconds: float = Field(ge=0, description="Sum of the cells")
    camera_seconds: float = Field(ge=0, description="Of which measured by cameras, in the cells they see")
    wifi_seconds: float = Field(ge=0, description="Of which placed by the WiFi layer, in the cells no camera sees")
    till_seconds: float = Field(
        ge=0,
        description="Of which at the tills' cells: customers paying, from the till scans (taken out of the WiFi "
                    "seconds of the till's zone)",
    )


# -- aggregate messages ---------------------------------------------------------------------------------------


class _Aggregate(WireModel):
    v: Literal[1] = Field(default=1, description="Wire version")
    store: str = Field(description="Store id")
    seq: int = Field(
        ge=1, description="Per-store message sequence, increasing, survives restarts; dedup on (store, seq)"
    )
    idem_key: str = Field(description="Idempotency key: the same window of the same kind always has the same key")
    window_start: AwareDatetime = Field(description="Start of the batch window")
    window_end: AwareDatetime = Field(description="End of the batch window (exclusive)")
    historical: bool = Field(description="True when replayed from the backlog rather than sent live")
    sent_at: AwareDatetime = Field(description="When this copy was published (differs between duplicates)")


class ScansMessage(_Aggregate):
    """``…/agg/scans``: barcode scans per scanner per rollup window."""

    kind: Literal["scans"] = "scans"
    rows: list[ScansRow] = Field(description="One row per scanner and rollup window with scans")


class HealthMessage(_Aggregate):
    """``…/agg/health``: device and gateway health."""

    kind: Literal["health"] = "health"
    gateway: GatewayHealthRow = Field(description="The gateway itself")
    rows: list[DeviceHealthRow] = Field(description="One row per configured device")


class PresenceMessage(_Aggregate):
    """``…/agg/presence``: WiFi presence per window."""

    kind: Literal["presence"] = "presence"
    rows: list[PresenceRow] = Field(description="One row per presence window")


class VisitsMessage(_Aggregate):
    """``…/agg/visits``: visitors, passersby, capture rate and dwell of stable devices."""

    kind: Literal["visits"] = "visits"
    rows: list[VisitsRow] = Field(description="One row per window in which visits ended")


class ZonesMessage(_Aggregate):
    """``…/agg/zones``: WiFi dwell per floor-plan zone."""

    kind: Literal["zones"] = "zones"
    rows: list[ZonesRow] = Field(description="One row per zone and window with devices")


class TrafficMessage(_Aggregate):
    """``…/agg/traffic``: camera line counts per camera, line and window."""

    kind: Literal["traffic"] = "traffic"
    rows: list[TrafficRow] = Field(description="One row per camera, line and window")


class HeatmapMessage(_Aggregate):
    """``…/agg/heatmap``: camera floor heatmaps (person-seconds per cell) per camera and window."""

    kind: Literal["heatmap"] = "heatmap"
    rows: list[HeatmapRow] = Field(description="One row per camera and window with a floor mapping")


class EslMessage(_Aggregate):
    """``…/agg/esl``: shelf-label health and price-update outcomes per access point and window."""

    kind: Literal["esl"] = "esl"
    rows: list[EslRow] = Field(description="One row per access point and window")


class FootfallMessage(_Aggregate):
    """``…/agg/footfall``: store traffic, occupancy curve, visitors/passersby/capture rate and conversion."""

    kind: Literal["footfall"] = "footfall"
    rows: list[FootfallRow] = Field(description="One row per fused window")


class DwellMessage(_Aggregate):
    """``…/agg/dwell``: dwell histogram of visits per fused window."""

    kind: Literal["dwell"] = "dwell"
    rows: list[DwellRow] = Field(description="One row per fused window")


class ZoneDwellMessage(_Aggregate):
    """``…/agg/zone_dwell``: person-seconds per floor-plan zone per fused window."""

    kind: Literal["zone_dwell"] = "zone_dwell"
    rows: list[ZoneDwellRow] = Field(description="One row per zone and fused window")


class FloorHeatmapMessage(_Aggregate):
    """``…/agg/floor_heatmap``: the fused floor heatmap (cameras and WiFi) per fused window."""

    kind: Literal["floor_heatmap"] = "floor_heatmap"
    rows: list[FloorHeatmapRow] = Field(description="One row per fused window")


AggregateMessage = Annotated[
    ScansMessage | HealthMessage | PresenceMessage | VisitsMessage | ZonesMessage | TrafficMessage | HeatmapMessage
    | EslMessage | FootfallMessage | DwellMessage | ZoneDwellMessage | FloorHeatmapMessage,
    Field(discriminator="kind"),
]
AGGREGATE_MODELS: dict[str, type[_Aggregate]] = {
    "scans": ScansMessage, "health": HealthMessage, "presence": PresenceMessage, "visits": VisitsMessage,
    "zones": ZonesMessage, "traffic": TrafficMessage, "heatmap": HeatmapMessage, "esl": EslMessage,
    "footfall": FootfallMessage, "dwell": DwellMessage, "zone_dwell": ZoneDwellMessage,
    "floor_heatmap": FloorHeatmapMessage,
}


# -- state, commands ------------------------------------------------------------------------------------------


class StateMessage(WireModel):
    """``…/state`` (retained): whether the store is online; the Last Will sends ``online: false``."""

    v: Literal[1] = 1
    store: str = Field(description="Store id")
    online: bool = Field(description="False when the gateway went away (Last Will) or stopped")
    session: int = Field(ge=0, description="Increments on every connect; a Will from an older session is stale")
    version: str = Field(description="StoreEdge software version")
    ts: AwareDatetime = Field(description="When this state was set")


class Command(WireModel):
    """``…/cmd/{name}``: a command from HQ. ``name`` must equal the topic's command name."""

    v: Literal[1] = 1
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                    description="Unique command id; a re-delivered id is not applied twice")
    name: str = Field(description="Command name, e.g. ping, config/reload, esl/update")
    store: str = Field(description="The store the command is for; others reject it")
    issued_at: AwareDatetime = Field(description="When HQ issued it")
    expires_at: AwareDatetime | None = Field(default=None, description="Not applied after this time")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments, validated by the command's handler")


CommandStatus = Literal["ok", "rejected", "failed", "duplicate"]


class CommandResult(WireModel):
    """``…/cmd_result``: what became of a command."""

    v: Literal[1] = 1
    store: str = Field(description="Store id")
    seq: int = Field(ge=1, description="Per-store message sequence (same counter as aggregates)")
    idem_key: str = Field(description="Idempotency key: store and command id")
    id: str | None = Field(description="The command id, or null when the command was too malformed to have one")
    name: str | None = Field(description="The command name from the topic")
    status: CommandStatus = Field(description="ok, rejected (not applied: invalid, foreign, expired, ...), "
                                              "failed (applied with an error) or duplicate (already handled)")
    reason: str | None = Field(default=None, description="Why it was rejected or failed")
    result: dict[str, Any] = Field(default_factory=dict, description="Command-specific result")
    ts: AwareDatetime = Field(description="When the command was handled")
    sent_at: AwareDatetime = Field(description="When this copy was published")


def encode(model: BaseModel, compress_over: int) -> tuple[bytes, str]:
    """Serialise a payload; returns the bytes and their MQTT 5 content type."""
    raw = model.model_dump_json(exclude_none=False).encode("utf-8")
    if compress_over and len(raw) > compress_over:
        return zlib.compress(raw, 6), CONTENT_TYPE_ZLIB
    return raw, CONTENT_TYPE_JSON


def decode_bytes(payload: bytes, content_type: str | None, max_bytes: int = 16 * 2**20) -> bytes:
    """The JSON bytes of a payload, inflating it when its content type says zlib (bounded against bombs)."""
    if content_type == CONTENT_TYPE_ZLIB:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(payload, max_bytes)
        if inflater.unconsumed_tail:
            raise ValueError(f"payload inflates beyond {max_bytes} bytes")
        return raw
    return payload
