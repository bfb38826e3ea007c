"""pcap/pcapng readers: round trips through scapy's writers, byte orders, resolutions, truncation and garbage."""

import struct
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11ProbeReq, RadioTap
from scapy.utils import PcapNgWriter, PcapWriter, wrpcap

from drivers.wifi_probe.pcap import (
    LINKTYPE_IEEE802_11,
    LINKTYPE_RADIOTAP,
    PcapError,
    PcapStats,
    iter_pcap,
)
from drivers.wifi_probe.protocol import ParseStats, parse_radiotap
from edge.errors import ProtocolError

T0 = 1795450000


def packets(count: int = 5) -> list[RadioTap]:
    pkts = []
    for i in range(count):
        pkt = (RadioTap(present="Flags+Channel+dBm_AntSignal", ChannelFrequency=2437, dBm_AntSignal=-40 - i)
               / Dot11(type=0, subtype=4, addr2=f"02:00:00:00:00:{i:02x}", SC=i << 4) / Dot11ProbeReq()
               / Dot11Elt(ID=0, info=b"x" * i))
        pkt.time = Decimal(T0) + Decimal(i) + Decimal("0.25")
        pkts.append(pkt)
    return pkts


def read(data: bytes) -> tuple[list[tuple[float, int, bytes]], PcapStats]:
    stats = PcapStats()
    records = [(ts, linktype, bytes(frame)) for ts, linktype, frame in iter_pcap(data, stats)]
    return records, stats


def expected(pkts: list[RadioTap], linktype: int = LINKTYPE_RADIOTAP) -> list[tuple[float, int, bytes]]:
    return [(float(p.time), linktype, bytes(p)) for p in pkts]


def test_iter_pcap__classic_pcap_round_trip(tmp_path: Path) -> None:
    pkts = packets()
    wrpcap(str(tmp_path / "a.pcap"), pkts)
    records, stats = read((tmp_path / "a.pcap").read_bytes())
    assert records == expected(pkts)
    assert stats == PcapStats(records=5, truncated=0, skipped_blocks=0)
    frames = [parse_radiotap(frame, ParseStats()) for _, _, frame in records]
    assert [f.seq for f in frames if f is not None] == [0, 1, 2, 3, 4]


def test_iter_pcap__frames_are_zero_copy_slices_of_a_memoryview(tmp_path: Path) -> None:
    wrpcap(str(tmp_path / "a.pcap"), packets(2))
    data = bytearray((tmp_path / "a.pcap").read_bytes())
    records = list(iter_pcap(memoryview(data)))
    data[-1] ^= 0xFF  # the last frame's last byte, seen through the slice
    assert records[-1][2][-1] == data[-1]


def test_iter_pcap__pcapng_round_trip(tmp_path: Path) -> None:
    pkts = packets()
    writer = PcapNgWriter(str(tmp_path / "a.pcapng"))
    for pkt in pkts:
        writer.write(pkt)
    writer.close()
    records, stats = read((tmp_path / "a.pcapng").read_bytes())
    assert records == expected(pkts)
    assert stats.records == 5 and stats.truncated == 0


def test_iter_pcap__nanosecond_pcap(tmp_path: Path) -> None:
    pkts = packets(3)
    pkts[1].time = Decimal(T0) + Decimal("0.123456789")
    writer = PcapWriter(str(tmp_path / "ns.pcap"), nano=True)
    writer.write(pkts)
    writer.close()
    data = (tmp_path / "ns.pcap").read_bytes()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B23C4D
    records, _ = read(data)
    assert [r[2] for r in records] == [bytes(p) for p in pkts]
    assert abs(records[1][0] - (T0 + 0.123456789)) < 1e-6  # float seconds: sub-microsecond, limited by float64
    assert records[1][0] != T0 + 0.123456  # the nanoseconds were not read as microseconds


@pytest.mark.parametrize("nano", [False, True])
def test_iter_pcap__big_endian_pcap(tmp_path: Path, nano: bool) -> None:
    pkts = packets()
    writer = PcapWriter(str(tmp_path / "be.pcap"), endianness=">", nano=nano)
    writer.write(pkts)
    writer.close()
    data = (tmp_path / "be.pcap").read_bytes()
    assert data[:4] == (b"\xa1\xb2\x3c\x4d" if nano else b"\xa1\xb2\xc3\xd4")
    records, _ = read(data)
    assert records == expected(pkts)


def test_iter_pcap__linktype_80211_is_reported(tmp_path: Path) -> None:
    pkts = [p[Dot11] for p in packets(2)]
    for pkt, src in zip(pkts, packets(2), strict=True):
        pkt.time = src.time
    wrpcap(str(tmp_path / "dot11.pcap"), pkts)
    records, _ = read((tmp_path / "dot11.pcap").read_bytes())
    assert {linktype for _, linktype, _ in records} == {LINKTYPE_IEEE802_11}


# --- hand-built pcapng: big-endian sections, resolutions, other blocks --------------------------------------------

def block(order: str, kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, options: bytes = b"", snaplen: int = 0) -> bytes:
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def epb(order: str, interface: int, ticks: int, frame: bytes) -> bytes:
    head = struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return block(order, 6, head + frame)


def spb(order: str, frame: bytes) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(frame)) + frame)


FRAMES = [bytes(p) for p in packets(3)]


@pytest.mark.parametrize("order", ["<", ">"])
def test_iter_pcap__pcapng_either_byte_order_with_tsresol(order: str) -> None:
    nanos = option(order, 9, b"\x09") + option(order, 0, b"")
    power2 = option(order, 9, b"\x8a") + option(order, 0, b"")  # 2^-10 s
    data = (shb(order) + idb(order, LINKTYPE_RADIOTAP, nanos) + idb(order, LINKTYPE_IEEE802_11, power2)
            + epb(order, 0, T0 * 10**9 + 123_456_789, FRAMES[0])
            + block(order, 4, b"\x00" * 8)  # name resolution block: skipped
            + epb(order, 1, T0 * 1024 + 512, FRAMES[1])
            + spb(order, FRAMES[2]))
    records, stats = read(data)
    assert [(lt, fr) for _, lt, fr in records] == [(127, FRAMES[0]), (105, FRAMES[1]), (127, FRAMES[2])]
    assert abs(records[0][0] - (T0 + 0.123456789)) < 1e-6
    assert records[1][0] == T0 + 0.5
    assert records[2][0] == records[1][0]  # a simple packet block has no time: it keeps the last one
    assert stats == PcapStats(records=3, truncated=0, skipped_blocks=1)


def test_iter_pcap__pcapng_tsoffset_and_default_microseconds() -> None:
    offset = option("<", 14, struct.pack("<q", 1000)) + option("<", 0, b"")
    data = shb("<") + idb("<", 127, offset) + epb("<", 0, 2_500_000, FRAMES[0])
    records, _ = read(data)
    assert records[0][0] == 1002.5


def test_iter_pcap__pcapng_sections_switch_byte_order_and_reset_interfaces() -> None:
    data = (shb("<") + idb("<", 127) + epb("<", 0, 1_000_000, FRAMES[0])
            + shb(">") + idb(">", 105) + epb(">", 0, 2_000_000, FRAMES[1])
            + epb(">", 1, 3_000_000, FRAMES[2]))  # interface 1 is not declared in this section
    records, stats = read(data)
    assert records == [(1.0, 127, FRAMES[0]), (2.0, 105, FRAMES[1])]
    assert stats.skipped_blocks == 1


def test_iter_pcap__spb_is_cut_to_the_snaplen() -> None:
    data = shb("<") + idb("<", 127, snaplen=10) + spb("<", FRAMES[0])
    records, _ = read(data)
    assert records[0][2] == FRAMES[0][:10]


# --- truncation, garbage, not a pcap -----------------------------------------------------------------------------

def test_iter_pcap__truncated_last_record_ends_iteration_and_is_counted(tmp_path: Path) -> None:
    pkts = packets()
    wrpcap(str(tmp_path / "a.pcap"), pkts)
    data = (tmp_path / "a.pcap").read_bytes()
    last_record = 16 + len(bytes(pkts[-1]))
    for cut in (1, 5, last_record - 8):  # inside the last frame, and inside the last record header
        records, stats = read(data[:-cut])
        assert stats.truncated == 1
        assert records == expected(pkts)[:len(records)] and len(records) == 4


def test_iter_pcap__truncated_last_pcapng_block_is_counted(tmp_path: Path) -> None:
    writer = PcapNgWriter(str(tmp_path / "a.pcapng"))
    for pkt in packets():
        writer.write(pkt)
    writer.close()
    records, stats = read((tmp_path / "a.pcapng").read_bytes()[:-3])
    assert len(records) == 4 and stats.truncated == 1


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3", b"hello world, not a capture", bytes(100),
                                  b"\xd4\xc3\xb2\xa1\x02\x00",  # pcap magic, header cut short
                                  b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"])
def test_iter_pcap__not_a_pcap_raises_pcap_error_at_once(data: bytes) -> None:
    with pytest.raises(PcapError):
        iter_pcap(data)  # no next() needed
    assert issubclass(PcapError, ProtocolError)


def test_iter_pcap__empty_capture_yields_nothing(tmp_path: Path) -> None:
    wrpcap(str(tmp_path / "empty.pcap"), [])
    assert read((tmp_path / "empty.pcap").read_bytes()) == ([], PcapStats())


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)


@settings(max_examples=300, deadline=None)
@given(head=st.sampled_from([PCAP_HEADER, shb("<") + idb("<", 127), shb(">") + idb(">", 127)]),
       tail=st.binary(max_size=400))
def test_iter_pcap__garbage_after_a_valid_header_never_raises(head: bytes, tail: bytes) -> None:
    stats = PcapStats()
    for _ts, _linktype, frame in iter_pcap(head + tail, stats):
        assert len(frame) <= len(tail)
    assert stats.records >= 0 and stats.truncated <= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_iter_pcap__random_bytes_raise_only_pcap_error(data: bytes) -> None:
    try:
        records = iter_pcap(data)
    except PcapError:
        return
    list(records)
