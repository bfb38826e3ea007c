"""The store config: every section of the TOML file as a pydantic model that forbids unknown keys."""

import re
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Self, Union

from pydantic import AwareDatetime, Field, field_validator, model_validator

from drivers import registry
from edge import const
from edge.config.base import DeviceConfig, SecretRef, StrictModel

_HOURS = re.compile(r"^(closed|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d)$")
HoursRange = Annotated[
    str,
    Field(pattern=_HOURS.pattern, description="'HH:MM-HH:MM' in store-local time, or 'closed'"),
]


class OpeningHours(StrictModel):
    """Opening hours per weekday in store-local time."""

    mon: HoursRange = "08:00-22:00"
    tue: HoursRange = "08:00-22:00"
    wed: HoursRange = "08:00-22:00"
    thu: HoursRange = "08:00-22:00"
    fri: HoursRange = "08:00-22:00"
    sat: HoursRange = "08:00-22:00"
    sun: HoursRange = "08:00-22:00"

    def minutes(self, weekday: int) -> tuple[int, int] | None:
        """Opening and closing time of a weekday (0 = Monday) in minutes after local midnight; None when closed."""
        hours: str = getattr(self, ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday])
        if hours == "closed":
            return None
        start, end = (int(part[:2]) * 60 + int(part[3:]) for part in hours.split("-"))
        return start, end

    def is_open(self, ts: float, tz: zoneinfo.ZoneInfo) -> bool:
        """Whether the store is open at epoch ``ts`` (its local weekday's range; 'closed' all day)."""
        local = datetime.fromtimestamp(ts, tz)
        span = self.minutes(local.weekday())
        return span is not None and span[0] <= local.hour * 60 + local.minute < span[1]


Point = tuple[float, float]


class Zone(StrictModel):
    """A named area of the floor, as a polygon in floor metres."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Zone name used in reports and topics")
    polygon: list[Point] = Field(min_length=3, description="Corners [x, y] in metres, in order around the zone")


class FloorPlan(StrictModel):
    """The sales floor: a rectangle in metres (origin at a corner, x along the width) and its zones."""

    width_m: float = Field(default=20.0, gt=0, le=1000, description="Floor width in metres (x axis)")
    depth_m: float = Field(default=15.0, gt=0, le=1000, description="Floor depth in metres (y axis)")
    zones: list[Zone] = Field(default_factory=list, description="Named zones (entrance, aisles, checkout, ...)")

    @model_validator(mode="after")
    def _zones_fit(self) -> Self:
        names = [zone.name for zone in self.zones]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"zone names must be unique; repeated: {', '.join(duplicates)}")
        for zone in self.zones:
            for x, y in zone.polygon:
                if not (0 <= x <= self.width_m and 0 <= y <= self.depth_m):
                    raise ValueError(f"zone {zone.name!r}: point ({x}, {y}) lies outside the floor")
        return self


class Retention(StrictModel):
    """How long rows are kept, by age of their event time."""

    raw_days: int = Field(default=7, ge=1, le=365, description="Days raw rows (scans, sightings) are kept")
    aggregate_days: int = Field(default=90, ge=1, le=3650, description="Days aggregate rows are kept")
    per_table: dict[str, int] = Field(
        default_factory=dict, description="Overrides in days for single tables, e.g. { scans = 30 }"
    )

    @field_validator("per_table")
    @classmethod
    def _known_tables(cls, value: dict[str, int]) -> dict[str, int]:
        known = set(const.RAW_TABLES) | set(const.AGGREGATE_TABLES) | {const.TABLE_COMMANDS}
        for table, days in value.items():
            if table not in known:
                raise ValueError(f"unknown table {table!r}; known: {', '.join(sorted(known))}")
            if days < 1:
                raise ValueError(f"{table}: days must be at least 1")
        return value

    def days_for(self, table: str) -> int:
        """Retention in days for one table."""
        default = self.raw_days if table in const.RAW_TABLES else self.aggregate_days
        return self.per_table.get(table, default)


class Storage(StrictModel):
    """The local SQLite store."""

    path: Path = Field(default=Path(const.DEFAULT_DB_PATH), description="SQLite database file")
    retention: Retention = Field(default_factory=Retention, description="Row retention by table")
    min_free_disk_mb: int = Field(
        default=512, ge=0, description="Below this much free disk, raw events are shed (aggregates are kept)"
    )
    queue_size: int = Field(default=100_000, ge=100, description="Events buffered for the writer before drops")
    batch_size: int = Field(default=5_000, ge=1, description="Most events written in one transaction")
    flush_interval_s: float = Field(default=0.25, gt=0, le=10, description="Longest wait before a partial batch")
    backups_kept: int = Field(default=3, ge=1, le=50, description="Pre-migration database copies kept")


class Privacy(StrictModel):
    """How device identifiers are protected (see DESIGN §3)."""

    salt_rotation: Literal["daily", "weekly"] = Field(
        default="daily", description="How often the MAC-hashing salt rotates (at store-local midnight)"
    )


class Tls(StrictModel):
    """TLS to the broker: the CA to trust and this store's client certificate."""

    ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the broker's certificate; none = system CAs"
    )
    client_cert: Path | None = Field(default=None, description="This store's client certificate (PEM)")
    client_key: SecretRef | None = Field(default=None, description="The client certificate's private key (a secret)")

    @model_validator(mode="after")
    def _cert_with_key(self) -> Self:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give both 'client_cert' and 'client_key', or neither")
        return self


class OutboxLimits(StrictModel):
    """Bounds of the unsent backlog; past them detail (heatmaps, health) is shed oldest first, counts never."""

    max_rows: int = Field(default=200_000, ge=100, description="Most unsent messages kept")
    max_bytes: int = Field(default=256 * 2**20, ge=2**20, description="Most bytes of unsent payloads kept")
    max_age_days: float = Field(default=30.0, gt=0, description="Unsent detail older than this is shed")
    sent_retention_hours: float = Field(default=24.0, ge=0, description="How long acknowledged rows are kept")


class Sync(StrictModel):
    """The MQTT 5 uplink to HQ."""

    enabled: bool = Field(default=False, description="Sync aggregates to HQ over MQTT")
    broker: str = Field(
        default="mqtt://localhost:1883", pattern=r"^mqtts?://[^/:]+(:\d+)?$",
        description="Broker URL: mqtt://host:port (plain) or mqtts://host:port (TLS)",
    )
    client_id: str | None = Field(default=None, description="MQTT client id; defaults to the store id")
    username: str | None = Field(default=None, description="MQTT user name")
    password: SecretRef | None = Field(default=None, description="MQTT password (a credential or file)")
    tls: Tls | None = Field(default=None, description="TLS settings; required with mqtts://")
    topic_prefix: str = Field(default="retail/v1/{store_id}", description="Topic prefix; {store_id} is filled in")
    keepalive_s: int = Field(default=300, ge=10, le=3600, description="MQTT keepalive; long suits cellular links")
    session_expiry_s: int = Field(
        default=7 * 86400, ge=0, description="Broker keeps the session (in-flight QoS1, subscriptions) this long"
    )
    inflight: int = Field(default=20, ge=1, le=1000, description="QoS1 messages in flight at once")
    reconnect_min_s: float = Field(default=1.0, gt=0, description="First reconnect delay")
    reconnect_max_s: float = Field(default=120.0, gt=0, description="Longest reconnect delay")
    batch_window_s: int = Field(
        default=900, ge=5, le=86400,
        description="Aggregates travel in one message per kind per window this long (a multiple of rollup_window_s)"
    )
    replay_rate_per_s: float = Field(
        default=50.0, gt=0, description="Token-bucket rate of backlog (historical) messages"
    )
    replay_burst: int = Field(default=100, ge=1, description="Token-bucket burst of backlog messages")
    compress_over_bytes: int = Field(default=1024, ge=0, description="Payloads larger than this are zlib-compressed")
    max_command_bytes: int = Field(default=65536, ge=256, description="Larger commands from HQ are rejected")
    health_every_s: int = Field(default=300, ge=5, description="How often a health message is queued for HQ")
    backlog_alarm_s: float = Field(
        default=3600.0, gt=0, description="edge status is degraded when the oldest unsent message is older"
    )
    outbox: OutboxLimits = Field(default_factory=OutboxLimits, description="Bounds of the unsent backlog")

    @model_validator(mode="after")
    def _tls_for_mqtts(self) -> Self:
        if self.enabled and self.broker.startswith("mqtts://") and self.tls is None:
            raise ValueError("mqtts:// needs a [sync.tls] section (at least ca_file, or an empty section)")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class VisitRules(StrictModel):
    """When a stable device's presence is a visit (Meraki-compatible thresholds; a longer gap, see ``gap_s``)."""

    enter_dbm: int = Field(default=-80, ge=-100, le=-20, description="A visit starts at this RSSI or stronger")
    stay_dbm: int = Field(default=-85, ge=-100, le=-20, description="A visit goes on while RSSI is this or stronger")
    gap_s: float = Field(
        default=420.0, gt=0,
        description="Unheard for longer than this ends a visit (Meraki uses 120 s, but idle phones' 90th-percentile "
                    "gap between probe bursts reaches 270 s: 120 s splits one stay into several visits)",
    )
    visitor_min_s: float = Field(default=300.0, gt=0, description="A visit this long is a visitor, else a passerby")

    @model_validator(mode="after")
    def _stay_below_enter(self) -> Self:
        if self.stay_dbm > self.enter_dbm:
            raise ValueError("stay_dbm must not be stronger than enter_dbm")
        return self


class WifiAnalytics(StrictModel):
    """How probe sightings become presence, visits and zone dwell."""

    window_s: int = Field(default=60, ge=10, le=3600, description="Presence window length in seconds")
    rssi_gate_dbm: int = Field(default=-75, ge=-100, le=-20, description="Sightings weaker than this are outside")
    persons_factor: float = Field(
        default=1.0, gt=0, le=10,
        description="Persons per counted device; set by calibration, or fitted against camera entries",
    )
    fit_factor_from_camera: bool = Field(
        default=False, description="Fit persons_factor online against camera entries (needs a people counter)"
    )
    visits: VisitRules = Field(default_factory=VisitRules, description="Visit rules for stable devices")
    zone_window_s: float = Field(default=20.0, ge=5, le=120, description="Median-RSSI window for zone assignment")
    zone_hysteresis_db: float = Field(default=4.0, ge=0, le=20, description="A new strongest sniffer must win by this")
    staff_max_hours: float = Field(
        default=6.0, gt=0, le=24, description="Universal MACs present longer than this a day are staff/infrastructure"
    )
    ignore_ouis: list[str] = Field(
        default_factory=list, description="Vendor prefixes to ignore (e.g. the store's own scanners), 'aa:bb:cc'"
    )
    dwell_buckets_min: list[int] = Field(
        default_factory=lambda: [5, 20, 60, 360], description="Dwell bucket edges in minutes (5–20, 20–60, 1–6 h, 6 h+)"
    )


class TrafficAnalytics(StrictModel):
    """Fused store traffic: camera entries calibrate WiFi, till scans give conversion (see edge/analytics/fusion.py)."""

    window_s: int = Field(
        default=900, ge=60, le=3600,
        description="Fused window in seconds (footfall, dwell, zone dwell, floor heatmap); must divide 3600",
    )
    tills: list[str] = Field(
        default_factory=list, description="Barcode scanner names at the tills; their scan bursts are transactions"
    )
    transaction_gap_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="A till scan more than this after the previous one on the same till starts a new transaction",
    )
    passerby_max_s: float = Field(
        default=60.0, ge=0,
        description="WiFi visits shorter than this are people walking past; from here to wifi.visits.visitor_min_s "
                    "they are quick visits inside",
    )
    factor_prior: float = Field(
        default=2.0, gt=0, le=50,
        description="Persons per WiFi visit inside, assumed before camera entries calibrate it",
    )
    factor_prior_weight: float = Field(
        default=2.0, ge=0,
        description="The prior counts as this many WiFi visits in the smoothed factor (light: an hour has a dozen or "
                    "more, and a prior far from the store's true factor would bias every hour)",
    )
    factor_halflife_h: float = Field(
        default=3.0, gt=0, le=168, description="Half-life in hours of an hour's weight in the smoothed factor"
    )
    factor_lookback_h: int = Field(
        default=12, ge=1, le=168, description="Hours (this one included) that feed an hour's smoothed factor"
    )
    factor_min_visitors: int = Field(
        default=5, ge=1, description="An hour with fewer WiFi visits inside (or no camera) does not update the factor"
    )
    visit_horizon_s: float = Field(
        default=1800.0, ge=0, le=86400,
        description="Fused hours wait this long past their end for WiFi visits that started in them to close",
    )
    max_source_lag_s: float = Field(
        default=7200.0, gt=0,
        description="A camera or WiFi source lagging the others by more than this is not waited for",
    )
    heatmap_cell_m: float = Field(default=0.5, gt=0, le=10, description="Cell size of the fused floor heatmap in m")
    till_pay_s: float = Field(
        default=30.0, ge=0, le=600,
        description="A customer stays this long at the till after the last scan (paying, packing): with a till "
                    "scanner's position, each transaction puts one person there from its first scan until then",
    )

    @field_validator("window_s")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if 3600 % value:
            raise ValueError(f"window_s ({value}) must divide 3600 (e.g. 300, 600, 900, 1800, 3600)")
        return value


class SimulatedClock(StrictModel):
    """An accelerated store clock for simulated store days (demos, tests); never set on a real store."""

    start: AwareDatetime = Field(description="Store time at `anchor`, e.g. '2026-11-22T08:00:00+01:00'")
    speed: float = Field(default=1.0, ge=1, le=100_000, description="Store seconds per wall-clock second")
    anchor: float | None = Field(
        default=None, description="Wall-clock epoch seconds at which the store clock reads `start` "
                                  "(default: when the daemon starts); lets a simulator share the same clock",
    )


class Runtime(StrictModel):
    """Timing of the daemon's own jobs."""

    rollup_window_s: int = Field(default=60, ge=5, le=3600, description="Aggregate window length in seconds")
    rollup_lateness_s: float = Field(default=5.0, ge=0, description="Wait this long after a window ends")
    heartbeat_s: float = Field(default=5.0, gt=0, le=60, description="Status and watchdog heartbeat period")
    retention_interval_s: int = Field(default=3600, ge=10, description="How often the retention job runs")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level")
    simulated_clock: SimulatedClock | None = Field(
        default=None,
        description="Demos and tests only: live input (scanner reads) is stamped on this accelerated clock "
                    "instead of the wall clock, so a simulated store day replays in minutes",
    )


# Each kind's config model comes from the driver registry, so adding a kind changes nothing here. Type
# checkers see the common base; pydantic sees the discriminated union of every registered kind.
if TYPE_CHECKING:
    DeviceSection = DeviceConfig
else:
    DeviceSection = Annotated[Union[registry.config_models()], Field(discriminator="type")]  # noqa: UP007


class EdgeConfig(StrictModel):
    """The whole store config file."""

    store_id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Store identifier, unique across the chain"
    )
    timezone: str = Field(default="UTC", description="IANA time zone of the store, e.g. 'Asia/Shanghai'")
    opening_hours: OpeningHours = Field(default_factory=OpeningHours, description="Opening hours per weekday")
    floor_plan: FloorPlan = Field(default_factory=FloorPlan, description="Floor size and zones in metres")
    devices: list[DeviceSection] = Field(default_factory=list, description="Devices; each has a 'type'")
    storage: Storage = Field(default_factory=Storage, description="The local SQLite store")
    privacy: Privacy = Field(default_factory=Privacy, description="Privacy of device identifiers")
    sync: Sync = Field(default_factory=Sync, description="MQTT uplink to HQ")
    runtime: Runtime = Field(default_factory=Runtime, description="Job timing and logging")
    wifi: WifiAnalytics = Field(default_factory=WifiAnalytics, description="WiFi presence, visit and zone analytics")
    traffic: TrafficAnalytics = Field(
        default_factory=TrafficAnalytics, description="Fused foot traffic, conversion, zone dwell and heatmaps"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @model_validator(mode="after")
    def _batch_fits_rollup(self) -> Self:
        if self.sync.batch_window_s % self.runtime.rollup_window_s:
            raise ValueError(f"sync.batch_window_s ({self.sync.batch_window_s}) must be a multiple of "
                             f"runtime.rollup_window_s ({self.runtime.rollup_window_s})")
        return self

    @model_validator(mode="after")
    def _unique_device_names(self) -> Self:
        names = [device.name for device in self.devices]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"device names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _traffic_fits(self) -> Self:
        scanners = {device.name for device in self.devices if device.type == "barcode"}
        unknown = [name for name in self.traffic.tills if name not in scanners]
        if unknown:
            raise ValueError(f"traffic.tills names no barcode device: {', '.join(unknown)}")
        if self.traffic.passerby_max_s >= self.wifi.visits.visitor_min_s:
            raise ValueError(f"traffic.passerby_max_s ({self.traffic.passerby_max_s:g}) must be below "
                             f"wifi.visits.visitor_min_s ({self.wifi.visits.visitor_min_s:g})")
        return self

    def enabled_devices(self) -> list[DeviceConfig]:
        """Device sections with ``enabled = true``."""
        return [device for device in self.devices if device.enabled]
