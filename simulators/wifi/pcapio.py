"""pcap and pcapng writers (struct only): one file per sniffer, radiotap link type by default."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_IEEE802_11_RADIOTAP = 127
SNAPLEN = 65535


def write_pcap(path: Path | str, frames: Iterable[tuple[float, bytes]], *, linktype: int = LINKTYPE_IEEE802_11_RADIOTAP,
               nanosecond: bool = False) -> int:
    """Write classic little-endian pcap (µs, or ns with magic a1b23c4d); returns the number of records."""
    scale = 1_000_000_000 if nanosecond else 1_000_000
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    count = 0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, linktype))
        for ts, data in frames:
            units = round(ts * scale)
            sec, frac = divmod(units, scale)
            out.write(struct.pack("<IIII", sec, frac, len(data), len(data)))
            out.write(data)
            count += 1
    return count


def _block(kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def write_pcapng(path: Path | str, frames: Iterable[tuple[float, bytes]], *,
                 linktype: int = LINKTYPE_IEEE802_11_RADIOTAP, if_name: str = "wlan0mon") -> int:
    """Write pcapng: a section header, one interface (µs resolution) and an enhanced packet block per frame."""
    count = 0
    with open(path, "wb") as out:
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(4, b"store-edge wifi simulator") + _option(0, b"")
        out.write(_block(0x0A0D0D0A, shb))
        idb = struct.pack("<HHI", linktype, 0, SNAPLEN) + _option(2, if_name.encode()) + _option(9, b"\x06")
        out.write(_block(0x00000001, idb + _option(0, b"")))
        for ts, data in frames:
            units = round(ts * 1_000_000)
            epb = struct.pack("<IIIII", 0, units >> 32, units & 0xFFFF_FFFF, len(data), len(data)) + data
            out.write(_block(0x00000006, epb))
            count += 1
    return count
