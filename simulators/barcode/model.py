"""What one simulated scan is: the bytes a scanner types and what the daemon should make of them."""

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class SimScan:
    """One scan the simulator will type, with its ground truth.

    ``aim`` is the AIM symbology identifier sent before the payload (e.g. ``]E0``) or ``""`` for none.
    ``payload`` is the data after the AIM prefix (FNC1 separators as ``\\x1d``). ``valid`` is whether the
    daemon must store it as a valid scan; ``kind`` is the expected ``Scan.kind``; ``gtin`` the expected
    GTIN-14 (or ``None``); ``price_minor``/``weight_g`` the expected embedded price or weight.
    """

    aim: str
    payload: str
    valid: bool
    kind: str
    gtin: str | None = None
    price_minor: int | None = None
    weight_g: int | None = None

    def frame(self, terminator: bytes) -> bytes:
        """The exact bytes a scanner sends for this scan."""
        return (self.aim + self.payload).encode("ascii") + terminator
