"""Typed events passed from driver threads to the store writer.

Events are slotted dataclasses, not pydantic models: they cross threads on the hot path. Each event class
names the table it lands in (``TABLE``), its column order (``COLUMNS``), whether it is raw data that may be shed
when the disk runs low (``RAW``), and turns itself into one row (``row()``).
"""

from dataclasses import dataclass
from typing import ClassVar, Protocol

from edge import const


class Event(Protocol):
    """What the store writer needs from any event."""

    TABLE: ClassVar[str]
    COLUMNS: ClassVar[tuple[str, ...]]
    RAW: ClassVar[bool]

    def row(self) -> tuple[object, ...]:
        """The values in ``COLUMNS`` order."""
        ...


@dataclass(slots=True, frozen=True)
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

    def row(self) -> tuple[object, ...]:
        """The values in ``COLUMNS`` order."""
        return (
            self.ts, self.device, self.symbology, self.text, self.kind, self.gtin, int(self.valid),
            self.error, self.price_minor, self.weight_g, self.ai_json,
        )
