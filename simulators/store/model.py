"""The typed ground truth of a simulated store day: parties, door crossings, till transactions, who carries what."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Literal

from simulators.camera.people import Look
from simulators.store.site import Site
from simulators.wifi.people import Person
from simulators.wifi.phones import DeviceModel

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class Knobs:
    """Scenario settings of a store day; every field can be passed to ``simulate_day`` as a keyword."""

    traffic: float = 1.0  # scales the parties-per-hour curve (1.0: about 1,000 entries from 08:00 to 20:00)
    passersby: float = 1.0  # scales the passersby-per-hour curve (1.0: about 5,000 a day)
    group_share: float = 0.25  # share of parties that are 2 (70 %) or 3 (30 %) people walking side by side
    buy_share: float = 0.5  # share of parties that pay at a till (one transaction per party)
    promotion_share: float = 0.45  # share of parties the promotion area draws in
    quick_share: float = 0.15  # 2-4 minute quick trips
    long_share: float = 0.07  # 30-60 minute visits
    median_visit_s: float = 870.0  # median of the regular visits
    staff: int = 5  # on the floor all day, each with a handheld (universal MAC); the first ones staff the tills
    phone_share: float = 0.9  # shoppers carrying a phone with Wi-Fi on
    passerby_phone_share: float = 0.85
    randomizing: float = 0.85  # share of phones that randomize their MAC (the WiFi simulator's default)
    door_spacing_s: float = 2.0  # parties going the same way pass the door at least this far apart
    last_entry_before_close_s: float = 900.0  # the door admits no party in the last 15 minutes
    margin_s: float = 1800.0  # the simulated span runs this long before opening and after closing

    def __post_init__(self) -> None:
        for name in ("group_share", "buy_share", "promotion_share", "quick_share", "long_share", "phone_share",
                     "passerby_phone_share", "randomizing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if min(self.traffic, self.passersby, self.staff, self.door_spacing_s) < 0:
            raise ValueError("rates, counts and spacings must not be negative")


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """One person crossing the door line (floor y = 0), on the party's lane."""

    ts: float
    person: str
    party: int
    direction: Direction
    x: float  # where along the store front
    speed: float  # walking speed across the door, m/s


@dataclass(frozen=True, slots=True)
class ItemScan:
    """One item scanned at a till: what the scanner types (AIM prefix + payload) and the item's GTIN-14."""

    ts: float
    till: str
    aim: str
    code: str
    gtin: str
    txn: int


@dataclass(frozen=True, slots=True)
class Transaction:
    """One party paying at one till: consecutive scans 1.5-4 s apart, then payment; tills idle 20 s+ between."""

    txn: int
    till: str
    party: int
    payer: str
    start_ts: float  # the party steps up to the till
    end_ts: float  # paid and leaving the till
    scans: tuple[ItemScan, ...]


@dataclass(frozen=True, slots=True)
class Party:
    """People who come in together, walk together and leave together; a group's members walk side by side."""

    party: int
    members: tuple[str, ...]
    speed: float
    enter_ts: float  # when the party's own track crosses the door inwards (members within ~0.1 s of it)
    exit_ts: float
    zones: tuple[str, ...]  # the zones it browsed, in order
    txn: int | None


@dataclass(eq=False)
class StoreDay:
    """Everything that happened in the store over ``[start_ts, end_ts)``, with true paths for everyone."""

    site: Site
    date: date
    seed: int
    knobs: Knobs
    midnight: float  # local midnight of ``date``
    open_ts: float
    close_ts: float
    start_ts: float
    end_ts: float
    shoppers: list[Person] = field(default_factory=list)
    passersby: list[Person] = field(default_factory=list)
    staff: list[Person] = field(default_factory=list)
    parties: list[Party] = field(default_factory=list)
    party_of: dict[str, int] = field(default_factory=dict)
    door: list[DoorEvent] = field(default_factory=list)  # time order
    transactions: list[Transaction] = field(default_factory=list)  # time order
    phones: dict[str, DeviceModel] = field(default_factory=dict)  # person -> the device they carry
    looks: dict[str, Look] = field(default_factory=dict)  # shopper -> how the door camera draws them

    def person(self, pid: str) -> Person:
        """Anyone's path by id."""
        return self._index[pid]

    @cached_property
    def _index(self) -> dict[str, Person]:
        return {p.pid: p for p in (*self.shoppers, *self.passersby, *self.staff)}
