"""Pure pcap and pcapng readers: the bytes of a capture file in, (timestamp, linktype, frame) records out.

No file I/O here: the driver maps the file and passes the bytes (a ``memoryview`` of an ``mmap`` works, and the
frames come back as zero-copy slices of it). Classic pcap is read in both byte orders with micro- or nanosecond
timestamps; pcapng sections in either byte order, interface descriptions (link type, ``if_tsresol``,
``if_tsoffset``), enhanced, simple and obsolete packet blocks; every other block is skipped. Only the start of
the file is trusted to be a capture: ``PcapError`` means "not a pcap at all"; anything unreadable after a valid
header (a record cut short by a crash, garbage) ends the iteration quietly and is counted in ``PcapStats``.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from edge.errors import ProtocolError

__all__ = ["LINKTYPE_IEEE802_11", "LINKTYPE_RADIOTAP", "PcapError", "PcapStats", "iter_pcap"]

LINKTYPE_IEEE802_11: Final = 105  # 802.11 frames with no radio header
LINKTYPE_RADIOTAP: Final = 127  # radiotap header + 802.11 frame

Record = tuple[float, int, memoryview]


class PcapError(ProtocolError):
    """The bytes are not a pcap or pcapng capture (unknown magic, or a header cut short)."""


@dataclass(slots=True)
class PcapStats:
    """What the reader saw: records yielded, whether the file ended inside a record, blocks it skipped."""

    records: int = 0
    truncated: int = 0  # 1 when the file ends inside a record or block (or turns to garbage); iteration stops
    skipped_blocks: int = 0  # pcapng blocks that carry no packet, or a packet of an undeclared interface


_PCAP_MAGIC_US: Final = 0xA1B2C3D4
_PCAP_MAGIC_NS: Final = 0xA1B23C4D
_PCAP_HEADER: Final = 24
_PCAP_RECORD: Final = 16
_LINKTYPE_MASK: Final = 0xFFFF  # the upper bits of the pcap link-type word carry FCS-length hints

_NG_SHB: Final = 0x0A0D0D0A
_NG_IDB: Final = 1
_NG_OPB: Final = 2  # obsolete packet block (pcapng drafts before EPB)
_NG_SPB: Final = 3
_NG_EPB: Final = 6
_NG_BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
_OPT_END: Final = 0
_OPT_TSRESOL: Final = 9
_OPT_TSOFFSET: Final = 14
_MIN_BLOCK: Final = 12


def iter_pcap(data: bytes | memoryview, stats: PcapStats | None = None) -> Iterator[Record]:
    """Iterate the records of a pcap or pcapng capture as (epoch seconds, linktype, frame bytes).

    Raises ``PcapError`` at once (not on the first ``next``) when ``data`` does not start with a pcap or
    pcapng header. Frames are slices of ``data``. A pcapng simple packet block has no timestamp of its own; it
    gets the timestamp of the packet before it (0.0 if none), which keeps event time monotonic.
    """
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if len(view) < 4:
        raise PcapError(f"{len(view)} bytes is too short for a capture header")
    magic_le = struct.unpack_from("<I", view, 0)[0]
    if magic_le == _NG_SHB:
        _section_order(view, 0)  # raises when the first section header is unreadable
        return _iter_pcapng(view, stats if stats is not None else PcapStats())
    for order in "<>":
        magic = struct.unpack_from(order + "I", view, 0)[0]
        if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            if len(view) < _PCAP_HEADER:
                raise PcapError(f"pcap header cut short at {len(view)} bytes")
            linktype = struct.unpack_from(order + "I", view, 20)[0] & _LINKTYPE_MASK
            scale = 1e-9 if magic == _PCAP_MAGIC_NS else 1e-6
            return _iter_classic(view, order, linktype, scale, stats if stats is not None else PcapStats())
    raise PcapError(f"not a pcap or pcapng file (magic {bytes(view[:4]).hex()})")


def _iter_classic(view: memoryview, order: str, linktype: int, scale: float, stats: PcapStats) -> Iterator[Record]:
    record = struct.Struct(order + "IIII")
    pos = _PCAP_HEADER
    end = len(view)
    while pos < end:
        if pos + _PCAP_RECORD > end:
            stats.truncated += 1
            return
        seconds, fraction, captured, _original = record.unpack_from(view, pos)
        pos += _PCAP_RECORD
        if pos + captured > end:
            stats.truncated += 1
            return
        stats.records += 1
        yield seconds + fraction * scale, linktype, view[pos:pos + captured]
        pos += captured


def _section_order(view: memoryview, pos: int) -> str:
    """The byte order of the section header block at ``pos``; raises ``PcapError`` if it is unreadable."""
    if pos + 16 > len(view):
        raise PcapError("pcapng section header cut short")
    for order in "<>":
        if struct.unpack_from(order + "I", view, pos + 8)[0] == _NG_BYTE_ORDER_MAGIC:
            return order
    raise PcapError("pcapng section header has no byte-order magic")


class _Interface:
    """What an interface description block says about the packets of that interface."""

    __slots__ = ("divisor", "linktype", "offset", "snaplen")

    def __init__(self, linktype: int, snaplen: int, divisor: int, offset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.divisor = divisor  # timestamp units per second
        self.offset = offset  # seconds added to every timestamp (if_tsoffset)


def _interface(view: memoryview, order: str, body: int, body_end: int) -> _Interface:
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", view, body)
    divisor, offset = 1_000_000, 0
    pos = body + 8
    while pos + 4 <= body_end:
        code, length = struct.unpack_from(order + "HH", view, pos)
        pos += 4
        if code == _OPT_END or pos + length > body_end:
            break
        if code == _OPT_TSRESOL and length >= 1:
            value = view[pos]
            # MSB clear: 10^-value seconds; set: 2^-(value & 0x7f). Bounded so garbage cannot make a huge int.
            divisor = 10 ** min(value, 30) if value < 0x80 else 2 ** min(value & 0x7F, 100)
        elif code == _OPT_TSOFFSET and length >= 8:
            offset = struct.unpack_from(order + "q", view, pos)[0]
        pos += (length + 3) & ~3
    return _Interface(linktype, snaplen, divisor, offset)


def _iter_pcapng(view: memoryview, stats: PcapStats) -> Iterator[Record]:
    end = len(view)
    pos = 0
    order = "<"
    interfaces: list[_Interface] = []
    last_ts = 0.0
    while pos < end:
        if pos + _MIN_BLOCK > end:
            stats.truncated += 1
            return
        if struct.unpack_from("<I", view, pos)[0] == _NG_SHB:
            try:
                order = _section_order(view, pos)
            except PcapError:
                stats.truncated += 1
                return
            interfaces = []  # interface ids are per section
        block_type, length = struct.unpack_from(order + "II", view, pos)
        if length < _MIN_BLOCK or length % 4 or pos + length > end:
            stats.truncated += 1  # cut short, or not a block at all: nothing after it can be trusted
            return
        body, body_end = pos + 8, pos + length - 4
        pos += length
        if block_type in (_NG_EPB, _NG_OPB):
            if body_end - body < 20:
                stats.skipped_blocks += 1
                continue
            if block_type == _NG_EPB:
                if_id, high, low, captured = struct.unpack_from(order + "IIII", view, body)
            else:
                if_id, _drops, high, low, captured = struct.unpack_from(order + "HHIII", view, body)
            data = body + 20
            if if_id >= len(interfaces) or data + captured > body_end:
                stats.skipped_blocks += 1
                continue
            interface = interfaces[if_id]
            last_ts = (high << 32 | low) / interface.divisor + interface.offset
        elif block_type == _NG_SPB:
            if not interfaces or body_end - body < 4:
                stats.skipped_blocks += 1
                continue
            interface = interfaces[0]
            data = body + 4
            original = struct.unpack_from(order + "I", view, body)[0]
            captured = min(original, body_end - data, interface.snaplen or original)
        elif block_type == _NG_IDB:
            if body_end - body < 8:
                stats.truncated += 1
                return
            interfaces.append(_interface(view, order, body, body_end))
            continue
        else:
            if block_type != _NG_SHB:
                stats.skipped_blocks += 1
            continue
        stats.records += 1
        yield last_ts, interface.linktype, view[data:data + captured]
