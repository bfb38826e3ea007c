"""Pure scanner protocol: split the serial byte stream into frames and decode each frame into a ``Scan``.

No I/O and no sleeping here: the driver feeds bytes with the time they arrived and stores what comes back.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from drivers.barcode.config import RcnLayout
from drivers.barcode.gs1 import (
    GRAM_DECIMALS,
    GTIN_LENGTHS,
    ScanKind,
    Verdict,
    check_digit_error,
    decode_element_strings,
    decode_gtin,
    gtin_check_digit,
    scale_decimal,
    to_gtin14,
)
from edge.events import Scan

# AIM identifiers (ISO/IEC 15424) whose data is a GS1 element string with the leading FNC1 implied:
# GS1-128, GS1 DataBar and composites, GS1 DataMatrix, GS1 QR, GS1 DotCode.
GS1_SYMBOLOGIES: Final = frozenset({"]C1", "]e0", "]e1", "]e2", "]d2", "]Q3", "]J1"})
# Only EAN/UPC and ITF carry GTINs; digit strings in Code 128, Code 39 or QR are often internal numbers
# without a check digit, so they are not judged as GTINs. No AIM prefix means we cannot tell, so we judge.
GTIN_SYMBOLOGY_PREFIXES: Final = ("]E", "]I")
_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_GS = 0x1D


@dataclass(slots=True)
class FramerCounters:
    """What the framer dropped or passed on, for device status."""

    frames: int = 0
    overlong: int = 0
    partial_discarded: int = 0
    garbage_frames: int = 0


class Framer:
    """Splits a scanner byte stream into frames on a terminator, bounded in memory and in time.

    Only bytes followed by the terminator are ever emitted. CR/LF left at either end of a frame are stripped
    (a scanner sending CRLF to a CR-configured port still works). A frame longer than ``max_frame`` is dropped
    up to the next terminator (``overlong``); a partial frame idle longer than ``idle_timeout_s`` at the next
    ``feed`` is dropped (``partial_discarded``); a frame with no visible character is dropped
    (``garbage_frames``); empty frames are ignored.
    """

    def __init__(self, terminator: bytes, max_frame: int, idle_timeout_s: float) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        self._terminator = terminator
        self._max_frame = max_frame
        self._idle_timeout_s = idle_timeout_s
        self._buffer = b""
        self._discarding = False
        self._last_data: float | None = None
        self.counters = FramerCounters()

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Add bytes read at time ``now``; return the frames they complete, terminator removed."""
        self._expire(now)
        if data:
            self._last_data = now
        buffer = self._buffer + data
        frames: list[bytes] = []
        start = 0
        while (end := buffer.find(self._terminator, start)) >= 0:
            self._take(buffer[start:end], frames)
            start = end + len(self._terminator)
        self._keep(buffer[start:])
        return frames

    def reset(self) -> None:
        """Discard any partial frame (on reconnect: its start and end came from different sessions)."""
        if self._has_partial():
            self.counters.partial_discarded += 1
        self._buffer = b""
        self._discarding = False
        self._last_data = None

    def _expire(self, now: float) -> None:
        """Drop a partial frame whose last byte arrived more than the idle timeout before ``now``."""
        if self._last_data is None or now - self._last_data <= self._idle_timeout_s:
            return
        if self._has_partial():
            self.counters.partial_discarded += 1
        self._buffer = b""
        # An overlong frame was counted already; after a pause the next bytes start a new frame.
        self._discarding = False

    def _has_partial(self) -> bool:
        """Whether the buffer holds the start of a frame (not just a piece of the terminator)."""
        return not self._discarding and bool(self._buffer.strip(b"\r\n"))

    def _take(self, raw: bytes, frames: list[bytes]) -> None:
        """Emit, count or drop the bytes before one terminator."""
        if self._discarding:
            self._discarding = False
            return
        if len(raw) > self._max_frame:
            self.counters.overlong += 1
            return
        if not raw:
            return
        frame = raw.strip(b"\r\n")
        if not any(0x21 <= byte <= 0x7E for byte in frame):
            self.counters.garbage_frames += 1
            return
        self.counters.frames += 1
        frames.append(frame)

    def _keep(self, rest: bytes) -> None:
        """Hold the unterminated tail, switching to discard mode once it cannot fit in a frame."""
        tail = len(self._terminator) - 1
        # The tail may end with the first bytes of a multi-byte terminator, which are not frame data.
        if self._discarding or len(rest) > self._max_frame + tail:
            if not self._discarding:
                self.counters.overlong += 1
                self._discarding = True
            rest = rest[max(0, len(rest) - tail) :] if tail else b""
        self._buffer = rest


def decode(frame: bytes, *, device: str, ts: float, rcn_layouts: Sequence[RcnLayout]) -> Scan:
    """Decode one frame into a ``Scan``; never raises (undecodable frames become invalid scans)."""
    try:
        return _decode(frame, device=device, ts=ts, rcn_layouts=rcn_layouts)
    except Exception as err:  # a decoder bug must cost one scan, not the reader thread
        symbology, text = split_aim(escape(frame))
        return Scan(
            ts=ts, device=device, symbology=symbology, text=text, kind="other", gtin=None, valid=False,
            error=f"internal decoder error: {type(err).__name__}: {err}",
        )


def _decode(frame: bytes, *, device: str, ts: float, rcn_layouts: Sequence[RcnLayout]) -> Scan:
    """``decode`` without the safety net."""
    if not is_printable(frame):
        symbology, text = split_aim(escape(frame))
        verdict = Verdict(kind="other", valid=False, error="non-printable bytes")
    else:
        symbology, text = split_aim(frame.decode("ascii"))
        verdict = classify(symbology, text, rcn_layouts)
    return Scan(
        ts=ts, device=device, symbology=symbology, text=text, kind=verdict.kind, gtin=verdict.gtin,
        valid=verdict.valid, error=verdict.error, price_minor=verdict.price_minor,
        weight_g=verdict.weight_g, ai_json=verdict.ai_json,
    )


def is_printable(frame: bytes) -> bool:
    """Whether every byte is printable ASCII or the GS (FNC1) separator."""
    return all(0x20 <= byte <= 0x7E or byte == _GS for byte in frame)


def escape(frame: bytes) -> str:
    """The frame as safe text: printable ASCII and GS kept, every other byte as ``\\xNN``."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E or b == _GS else f"\\x{b:02x}" for b in frame)


def split_aim(text: str) -> tuple[str | None, str]:
    """Split a leading AIM symbology identifier (``]`` + letter + modifier) from the payload."""
    if _AIM.match(text):
        return text[:3], text[3:]
    return None, text


def classify(symbology: str | None, payload: str, rcn_layouts: Sequence[RcnLayout]) -> Verdict:
    """Decide what a printable payload is: GS1 element string, RCN, GTIN or other."""
    if not payload:
        return Verdict(kind="other", valid=False, error="empty payload")
    if symbology in GS1_SYMBOLOGIES or "\x1d" in payload:
        return decode_element_strings(payload)
    if payload.isascii() and payload.isdigit():
        layout = match_layout(payload, rcn_layouts)
        if layout is not None:
            return decode_rcn(payload, layout)
        if len(payload) in GTIN_LENGTHS and carries_gtin(symbology):
            return decode_gtin(payload)
    return Verdict(kind="other", valid=True)


def carries_gtin(symbology: str | None) -> bool:
    """Whether digits under this AIM identifier (or none) are judged as a GTIN."""
    return symbology is None or symbology.startswith(GTIN_SYMBOLOGY_PREFIXES)


def match_layout(digits: str, layouts: Sequence[RcnLayout]) -> RcnLayout | None:
    """The first layout with the same length whose literal digits all match, or ``None``."""
    for layout in layouts:
        pattern = layout.pattern
        if len(pattern) == len(digits) and all(
            p == d for p, d in zip(pattern, digits, strict=True) if p.isdigit()
        ):
            return layout
    return None


def decode_rcn(digits: str, layout: RcnLayout) -> Verdict:
    """Read price, weight and lookup GTIN from a code that matches ``layout``."""
    pattern = layout.pattern
    kind: ScanKind = "rcn_price" if "P" in pattern else "rcn_weight"
    error = check_digit_error(digits)
    if error is not None:
        return Verdict(kind=kind, valid=False, error=error)
    price = _digits_at(digits, pattern, "P")
    weight = _digits_at(digits, pattern, "W")
    return Verdict(
        kind=kind,
        valid=True,
        gtin=rcn_lookup_gtin(digits, pattern) if len(digits) in GTIN_LENGTHS else None,
        price_minor=int(price) if price else None,
        weight_g=scale_decimal(weight, layout.weight_decimals, GRAM_DECIMALS) if weight else None,
    )


def rcn_lookup_gtin(digits: str, pattern: str) -> str:
    """The GTIN-14 POS systems use to look up a variable-measure item: P/W digits zeroed, check redone."""
    body = "".join("0" if p in "PW" else d for p, d in zip(pattern[:-1], digits[:-1], strict=True))
    return to_gtin14(body + str(gtin_check_digit(body)))


def _digits_at(digits: str, pattern: str, field: str) -> str:
    """The digits at the positions where ``pattern`` has ``field``, in order."""
    return "".join(d for p, d in zip(pattern, digits, strict=True) if p == field)
