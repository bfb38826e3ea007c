"""Read a JPEG's frame header (size and progressive flag) the way the AP's decoder would meet it; pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

_SOI = b"\xff\xd8"
# Start-of-frame markers (ITU T.81 table B.1); C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_NO_LENGTH = {0x01, *range(0xD0, 0xD9)}  # TEM, RSTn, SOI carry no length field


@dataclass(frozen=True, slots=True)
class JpegInfo:
    """What the AP's baseline-only decoder cares about."""

    width: int
    height: int
    progressive: bool


def jpeg_info(data: bytes) -> JpegInfo | None:
    """The frame header of a JPEG, or None when ``data`` is not a JPEG with a readable frame header."""
    if not data.startswith(_SOI):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _NO_LENGTH:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF:
            if pos + 9 > len(data):
                return None
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return JpegInfo(width=width, height=height, progressive=marker in _PROGRESSIVE)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None
