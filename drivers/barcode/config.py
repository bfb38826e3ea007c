"""Config of one serial barcode scanner: port settings, framing limits and in-store RCN layouts."""

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from drivers.barcode import KEY
from edge.config.base import DeviceConfig, StrictModel

STANDARD_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
NAMED_TERMINATORS: dict[str, bytes] = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
_HEX_BYTE = re.compile(r"^0x[0-9a-fA-F]{2}$")
RCN_PATTERN_CHARS = frozenset("0123456789IPWCX")


class RcnLayout(StrictModel):
    """One in-store price/weight-embedded code layout (a Restricted Circulation Number scheme).

    Each pattern character is a literal digit (must match), ``I`` item/PLU digit, ``P`` price digit (minor
    currency units, e.g. fen), ``W`` weight digit, ``C`` the GS1 mod-10 check digit over all preceding
    digits (last), or ``X`` an ignored digit. Examples: China 13-digit ``2IIIIIIPPPPPC`` (flag 2, 6-digit
    item, 5-digit price in fen) and China 18-digit scale ``26IIIIIPPPPPWWWWWC`` (PLU, price in fen,
    weight in kg with 3 decimals).
    """

    name: str = Field(min_length=1, max_length=40, description="Label of this layout, e.g. 'cn-13-price'")
    pattern: str = Field(
        description=(
            "One character per digit: literal digit, I item, P price (minor units), W weight, "
            "C check digit (last), X ignored; e.g. '2IIIIIIPPPPPC'"
        ),
    )
    weight_decimals: int = Field(
        default=3, ge=0, le=6, description="Decimals of the kg value held in the W digits (3 means grams)"
    )

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, pattern: str) -> str:
        problem = rcn_pattern_problem(pattern)
        if problem is not None:
            raise ValueError(f"RCN pattern {pattern!r}: {problem}")
        return pattern

    @property
    def prefix(self) -> str:
        """The literal digits at the start of the pattern (the in-store flag, e.g. '2' or '26')."""
        return pattern_prefix(self.pattern)


def pattern_prefix(pattern: str) -> str:
    """The leading run of literal digits in an RCN pattern."""
    end = 0
    while end < len(pattern) and pattern[end].isdigit():
        end += 1
    return pattern[:end]


def rcn_pattern_problem(pattern: str) -> str | None:
    """Why an RCN pattern is unusable, or ``None`` when it is fine."""
    bad = sorted(set(pattern) - RCN_PATTERN_CHARS)
    if bad:
        return f"unexpected characters {''.join(bad)!r} (use digits, I, P, W, C, X)"
    if not 8 <= len(pattern) <= 18:
        return f"length {len(pattern)} is outside 8..18"
    if not pattern_prefix(pattern):
        return "must start with at least one literal digit (the in-store flag)"
    if "I" not in pattern:
        return "needs at least one item digit I"
    if "P" not in pattern and "W" not in pattern:
        return "needs at least one price digit P or weight digit W"
    if pattern.count("C") != 1 or not pattern.endswith("C"):
        return "needs exactly one check digit C, as the last character"
    return None


class BarcodeConfig(DeviceConfig):
    """One serial or USB-CDC barcode scanner."""

    type: Literal["barcode"] = Field(description=f"Driver type, always '{KEY}'")
    port: str = Field(
        min_length=1,
        description=(
            "Device path or pyserial URL: /dev/ttyACM0, /dev/serial/by-id/..., rfc2217://host:port, "
            "socket://host:port"
        ),
    )
    baudrate: int = Field(default=115200, description="Line speed; one of the standard rates 1200..921600")
    position: tuple[float, float] | None = Field(
        default=None,
        description="For a till scanner: where the customer stands to pay, [x, y] in floor metres (the fused heatmap "
                    "puts each transaction's customer there)",
    )
    bytesize: Literal[7, 8] = Field(default=8, description="Data bits per character")
    parity: Literal["N", "E", "O"] = Field(default="N", description="Parity: N none, E even, O odd")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits per character")
    terminator: str = Field(
        default="CR",
        description="Suffix the scanner sends after each code: CR, LF, CRLF, or one byte in hex like '0x03'",
    )
    max_frame_bytes: int = Field(
        default=512, ge=16, le=8192, description="Longest frame kept; longer ones are dropped and counted"
    )
    idle_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="A partial frame idle longer than this is discarded (never stored as a scan)",
    )
    reconnect_max_s: float = Field(
        default=2.0, gt=0, le=60, description="Cap of the reconnect backoff after the scanner vanishes"
    )
    rcn_layouts: list[RcnLayout] = Field(
        default_factory=list,
        description="In-store price/weight-embedded code layouts, tried in order; the first match wins",
    )

    @field_validator("baudrate")
    @classmethod
    def _check_baudrate(cls, baudrate: int) -> int:
        if baudrate not in STANDARD_BAUDRATES:
            rates = ", ".join(str(rate) for rate in STANDARD_BAUDRATES)
            raise ValueError(f"baudrate {baudrate} is not a standard rate ({rates})")
        return baudrate

    @field_validator("terminator")
    @classmethod
    def _check_terminator(cls, terminator: str) -> str:
        parse_terminator(terminator)
        return terminator

    @model_validator(mode="after")
    def _unique_layout_names(self) -> Self:
        names = [layout.name for layout in self.rcn_layouts]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rcn_layouts names must be unique; repeated: {', '.join(repeated)}")
        return self

    def terminator_bytes(self) -> bytes:
        """The terminator as the bytes the framer splits on."""
        return parse_terminator(self.terminator)


def parse_terminator(text: str) -> bytes:
    """Turn 'CR', 'LF', 'CRLF' or a hex byte like '0x03' into bytes; ``ValueError`` says what is accepted."""
    named = NAMED_TERMINATORS.get(text.upper())
    if named is not None:
        return named
    if _HEX_BYTE.match(text):
        value = int(text, 16)
        if value == 0x1D:
            # GS is the FNC1 separator inside GS1 codes; splitting on it would cut every GS1-128 scan apart.
            raise ValueError("terminator 0x1d (GS) is the GS1 field separator and cannot end a frame")
        if 0x20 <= value <= 0x7E:
            # Printable characters occur inside Code 128, QR and GS1 data, so they would split real codes.
            raise ValueError(f"terminator {text!r} is a printable character that can occur inside codes")
        return bytes([value])
    raise ValueError(f"terminator {text!r} is not CR, LF, CRLF or one byte in hex like '0x03'")
