"""Probe-request parser: fields equal scapy's dissection, fingerprint stability, truncation and fuzzing, node lines."""

import json
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11FCS, Dot11ProbeReq, RadioTap

from drivers.wifi_probe import protocol
from drivers.wifi_probe.node import MAX_NODE_LINE, NodeReport, parse_node_line
from drivers.wifi_probe.protocol import (
    ParseStats,
    ProbeFrame,
    channel_of,
    parse_80211,
    parse_radiotap,
)

HT_CAPS = bytes.fromhex("ef011bffff000000000000000000000000000000000000000000")  # 26 bytes
VHT_CAPS = bytes.fromhex("b2f1800bfaff0000faff0000")
EXT_CAPS = bytes.fromhex("0400000000000040")
HE_CAPS = bytes.fromhex("2301080800000080441301001f0a00a700b8a000000000fcff")  # extension id 35 first
APPLE = bytes.fromhex("0017f20a000104000000")
WPS_PREFIX = bytes.fromhex("0050f204104a000110103a00010010080002314810470010")  # ends with the UUID-E header


def wps(uuid: bytes) -> bytes:
    """A WPS vendor element body whose UUID-E (the last 16 bytes) is per device or per MAC."""
    return WPS_PREFIX + uuid


def elements(ssid: bytes = b"", channel: int = 6, ht: bytes = HT_CAPS, uuid: bytes = bytes(16)) -> list[Dot11Elt]:
    """The elements of one phone model's probe request, in its order."""
    return [
        Dot11Elt(ID=0, info=ssid),
        Dot11Elt(ID=1, info=bytes([0x02, 0x04, 0x0B, 0x16])),
        Dot11Elt(ID=50, info=bytes([0x0C, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6C])),
        Dot11Elt(ID=3, info=bytes([channel])),
        Dot11Elt(ID=45, info=ht),
        Dot11Elt(ID=127, info=EXT_CAPS),
        Dot11Elt(ID=191, info=VHT_CAPS),
        Dot11Elt(ID=255, info=HE_CAPS),
        Dot11Elt(ID=221, info=APPLE),
        Dot11Elt(ID=221, info=wps(uuid)),
    ]


def probe(mac: str = "da:a1:19:00:00:01", sc: int = 0x1230, ies: list[Dot11Elt] | None = None,
          fcs: bool = False) -> Dot11:
    layer = Dot11FCS if fcs else Dot11
    pkt = layer(type=0, subtype=4, addr1="ff:ff:ff:ff:ff:ff", addr2=mac, addr3="ff:ff:ff:ff:ff:ff", SC=sc)
    pkt = pkt / Dot11ProbeReq()
    for element in elements() if ies is None else ies:
        pkt = pkt / element
    return pkt


def radiotap_bytes(words: list[int], fields: list[tuple[int, bytes]]) -> bytes:
    """A radiotap header built by hand: each field is padded to its alignment from the start of the header."""
    header = bytearray(struct.pack("<BBH", 0, 0, 0))
    for word in words:
        header += struct.pack("<I", word)
    for align, value in fields:
        header += bytes(-len(header) % align)
        header += value
    struct.pack_into("<H", header, 2, len(header))
    return bytes(header)


def scapy_view(raw: bytes) -> tuple[bytes, int, int | None, int | None, int]:
    """(mac, seq, rssi, freq, ssid_len) as scapy dissects the same bytes."""
    pkt = RadioTap(raw)
    dot11 = pkt.payload
    rssi = pkt.dBm_AntSignal if pkt.present.dBm_AntSignal else None
    freq = pkt.ChannelFrequency if pkt.present.Channel else (
        pkt.ChannelPlusFrequency if pkt.present.ChannelPlus else None)
    ssid = pkt[Dot11Elt]
    assert ssid.ID == 0
    return bytes.fromhex(dot11.addr2.replace(":", "")), dot11.SC >> 4, rssi, freq or None, len(ssid.info)


def ours(frame: ProbeFrame) -> tuple[bytes, int, int | None, int | None, int]:
    return frame.mac, frame.seq, frame.rssi, frame.freq_mhz, frame.ssid_len


def parse(raw: bytes, **kwargs: bool) -> tuple[ProbeFrame | None, ParseStats]:
    stats = ParseStats()
    frame = parse_radiotap(raw, stats, **kwargs)
    outcomes = stats.probes + stats.not_probe + stats.malformed + stats.truncated + stats.bad_fcs
    assert stats.frames == 1 and outcomes == 1, stats  # every frame is counted exactly once
    return frame, stats


RADIOTAP_VARIANTS = {
    "minimal": RadioTap,
    "tsft_flags_rate_channel_signal": lambda: RadioTap(
        present="TSFT+Flags+Rate+Channel+dBm_AntSignal", mac_timestamp=123456789, Rate=2, ChannelFrequency=2437,
        ChannelFlags=0xA0, dBm_AntSignal=-61),
    "signal_noise_antenna_rxflags": lambda: RadioTap(
        present="Flags+Channel+dBm_AntSignal+dBm_AntNoise+Lock_Quality+Antenna+RXFlags", ChannelFrequency=5180,
        dBm_AntSignal=-72, dBm_AntNoise=-95, Antenna=1),
    "mcs_ampdu_vht_timestamp": lambda: RadioTap(
        present="TSFT+Flags+Rate+Channel+dBm_AntSignal+MCS+A_MPDU+VHT+timestamp",
        ChannelFrequency=2412, dBm_AntSignal=-40),
    "he_lsig": lambda: RadioTap(
        present="Flags+Channel+dBm_AntSignal+HE+L_SIG", ChannelFrequency=2462, dBm_AntSignal=-88),
}


@pytest.mark.parametrize("fcs", [False, True], ids=["no_fcs", "fcs"])
@pytest.mark.parametrize("variant", sorted(RADIOTAP_VARIANTS))
def test_parse_radiotap__fields_equal_scapy_dissection(variant: str, fcs: bool) -> None:
    header = RADIOTAP_VARIANTS[variant]()
    if fcs:
        header.present = header.present | "Flags" if header.present is not None else "Flags"
        header.Flags = "FCS"
    raw = bytes(header / probe(mac="3c:22:fb:12:34:56", sc=0xABC0, fcs=fcs,
                               ies=elements(ssid=b"store-guest")))
    frame, _ = parse(raw)
    assert frame is not None
    assert ours(frame) == scapy_view(raw)
    assert frame.randomized is False
    assert frame.channel == channel_of(frame.freq_mhz)


def test_parse_radiotap__fcs_is_stripped_and_checked() -> None:
    raw = bytes(RadioTap(present="Flags+dBm_AntSignal", Flags="FCS", dBm_AntSignal=-50) / probe(fcs=True))
    assert zlib.crc32(raw[raw[2]:-4]) == struct.unpack("<I", raw[-4:])[0]  # scapy appended a correct FCS
    good, _ = parse(raw)
    assert good is not None
    without = bytes(RadioTap(present="Flags+dBm_AntSignal", dBm_AntSignal=-50) / probe())
    assert good == parse(without)[0]  # the FCS changes nothing but is not read as an element
    corrupt = raw[:-1] + bytes([raw[-1] ^ 0xFF])
    frame, stats = parse(corrupt)
    assert frame is None and stats.bad_fcs == 1
    assert parse(corrupt, verify_fcs=False)[0] == good


def test_parse_radiotap__frame_flagged_bad_fcs_is_skipped() -> None:
    raw = bytes(RadioTap(present="Flags", Flags="badFCS") / probe())
    frame, stats = parse(raw)
    assert frame is None and stats.bad_fcs == 1


# Presence bits used by the hand-built headers.
TSFT, FLAGS, CHANNEL, SIGNAL, ANTENNA, RXFLAGS, XCHANNEL, TLV = 1, 2, 1 << 3, 1 << 5, 1 << 11, 1 << 14, 1 << 18, 1 << 28
RT_NS, VENDOR_NS, EXT = 1 << 29, 1 << 30, 1 << 31


def multi_antenna(combined: int | None, chains: list[int], flags: int = 0) -> tuple[list[int], list[tuple[int, bytes]]]:
    """Linux mac80211's layout: namespace 0 with the combined signal, then one radiotap namespace per chain."""
    first = TSFT | FLAGS | CHANNEL | RXFLAGS | (SIGNAL if combined is not None else 0) | RT_NS | EXT
    words = [first]
    fields = [(8, struct.pack("<Q", 987654321)), (1, bytes([flags])), (2, struct.pack("<HH", 2437, 0xA0))]
    if combined is not None:
        fields.append((1, struct.pack("<b", combined)))
    fields.append((2, struct.pack("<H", 0)))
    for index, signal in enumerate(chains):
        last = index == len(chains) - 1
        words.append(SIGNAL | ANTENNA | (0 if last else RT_NS | EXT))
        fields += [(1, struct.pack("<b", signal)), (1, bytes([index]))]
    return words, fields


@pytest.mark.parametrize(("combined", "chains", "expected"), [
    (-48, [-51, -55], -48),  # the combined value wins when present
    (None, [-71, -55, -90], -55),  # else the strongest chain
    (None, [-128, -1], -1),  # signed bytes: 0xFF (-1) is stronger than 0x80 (-128)
])
def test_parse_radiotap__several_antennas(combined: int | None, chains: list[int], expected: int) -> None:
    words, fields = multi_antenna(combined, chains)
    raw = radiotap_bytes(words, fields) + bytes(probe())
    frame, _ = parse(raw)
    assert frame is not None and frame.rssi == expected
    mac, seq, scapy_rssi, freq, ssid_len = scapy_view(raw)  # scapy reads namespace 0 and leaves the chains raw
    assert (frame.mac, frame.seq, frame.freq_mhz, frame.ssid_len) == (mac, seq, freq, ssid_len)
    assert scapy_rssi == combined
    chain_bytes = RadioTap(raw).notdecoded
    assert [struct.unpack("b", chain_bytes[i:i + 1])[0] for i in range(0, len(chain_bytes), 2)] == chains


def test_parse_radiotap__fcs_flag_in_extended_header() -> None:
    words, fields = multi_antenna(-60, [-61, -63], flags=0x10)
    body = bytes(probe())
    raw = radiotap_bytes(words, fields) + body + struct.pack("<I", zlib.crc32(body))
    frame, _ = parse(raw)
    assert frame is not None and frame.rssi == -60
    assert frame == parse(radiotap_bytes(*multi_antenna(-60, [-61, -63])) + body)[0]


def test_parse_radiotap__xchannel_gives_the_frequency_when_channel_is_absent() -> None:
    # Built by hand: scapy writes XChannel as 7 bytes, radiotap.org says 8 (u32 flags, u16 freq, u8 ch, u8 power).
    header = radiotap_bytes([TSFT | FLAGS | SIGNAL | XCHANNEL], [
        (8, struct.pack("<Q", 1)), (1, b"\x00"), (1, struct.pack("<b", -80)),
        (4, struct.pack("<IHBB", 0, 5955, 1, 30))])
    raw = header + bytes(probe())
    frame, _ = parse(raw)
    assert frame is not None and (frame.freq_mhz, frame.channel, frame.rssi) == (5955, 1, -80)
    assert ours(frame) == scapy_view(raw)  # scapy reads the same frequency (and leaves the power byte undecoded)


def test_parse_radiotap__vendor_namespace_is_skipped_by_its_length() -> None:
    # namespace 0: Flags, Channel, Antenna (ending on an odd offset, so the vendor header needs its 2-byte
    # alignment); then a vendor namespace with 5 bytes of data; then a radiotap namespace with one chain's signal.
    words = [FLAGS | CHANNEL | ANTENNA | VENDOR_NS | EXT, 0b111 | RT_NS | EXT, SIGNAL | ANTENNA]
    vendor = bytes.fromhex("001122") + bytes([7]) + struct.pack("<H", 5) + b"\xaa" * 5
    fields = [(1, b"\x00"), (2, struct.pack("<HH", 5180, 0x140)), (1, b"\x00"), (2, vendor),
              (1, struct.pack("<b", -67)), (1, b"\x00")]
    raw = radiotap_bytes(words, fields)
    assert raw[24:27] == bytes.fromhex("001122")  # antenna at 22, one pad byte, the vendor header at 24
    frame, _ = parse(raw + bytes(probe()))
    assert frame is not None
    assert (frame.rssi, frame.freq_mhz, frame.channel) == (-67, 5180, 36)
    assert frame.mac == scapy_view(raw + bytes(probe()))[0]


# (alignment, size) of every field defined by radiotap.org, by present bit (Flags and dBm antenna signal aside).
RADIOTAP_SPEC = {
    0: (8, 8), 2: (1, 1), 3: (2, 4), 4: (2, 2), 6: (1, 1), 7: (2, 2), 8: (2, 2), 9: (2, 2), 10: (1, 1),
    11: (1, 1), 12: (1, 1), 13: (1, 1), 14: (2, 2), 15: (2, 2), 16: (1, 1), 17: (1, 1), 18: (4, 8), 19: (1, 3),
    20: (4, 8), 21: (2, 12), 22: (8, 12), 23: (2, 12), 24: (2, 12), 25: (2, 6), 26: (1, 1), 27: (2, 4),
}


@pytest.mark.parametrize("bit", sorted(RADIOTAP_SPEC))
def test_parse_radiotap__chain_signal_is_found_after_every_known_field(bit: int) -> None:
    # Namespace 0: Flags plus the field under test, which lands on an odd offset and needs padding; namespace 1:
    # one chain's signal. A wrong size or alignment for the field moves the signal.
    align, size = RADIOTAP_SPEC[bit]
    ns0 = sorted([(1, (1, b"\x00")), (bit, (align, bytes(size)))])
    words = [FLAGS | 1 << bit | RT_NS | EXT, SIGNAL | ANTENNA]
    fields = [field for _, field in ns0] + [(1, struct.pack("<b", -33)), (1, b"\x07")]
    frame, _ = parse(radiotap_bytes(words, fields) + bytes(probe()))
    assert frame is not None and frame.rssi == -33


def test_parse_radiotap__unknown_present_bit_keeps_fields_read_and_finds_the_frame() -> None:
    # TLV (bit 28) follows the signal: its size is unknowable, so parsing of fields stops, yet it_len still
    # locates the 802.11 frame.
    header = radiotap_bytes([FLAGS | SIGNAL | TLV], [(1, b"\x00"), (1, struct.pack("<b", -44)),
                                                     (4, bytes.fromhex("0100020011220000"))])
    frame, _ = parse(header + bytes(probe(sc=0x7770)))
    assert frame is not None and frame.rssi == -44 and frame.seq == 0x777


def test_parse_radiotap__unknown_bit_in_continuation_word_still_parses() -> None:
    header = radiotap_bytes([FLAGS | SIGNAL | EXT, 1 << 3], [(1, b"\x00"), (1, struct.pack("<b", -59)),
                                                              (1, b"\x99\x99\x99")])
    frame, _ = parse(header + bytes(probe()))
    assert frame is not None and frame.rssi == -59


@pytest.mark.parametrize(("raw", "outcome"), [
    (b"", "truncated"),
    (b"\x00\x00\x08\x00", "truncated"),
    (b"\x01\x00\x08\x00\x00\x00\x00\x00", "malformed"),  # radiotap version 1
    (b"\x00\x00\x04\x00\x00\x00\x00\x00", "malformed"),  # it_len shorter than the header
    (b"\x00\x00\x40\x00\x00\x00\x00\x00", "truncated"),  # it_len past the end
    (b"\x00\x00\x08\x00\x00\x00\x00\x80", "malformed"),  # presence words chain past it_len
    (b"\x00\x00\x08\x00\x01\x00\x00\x00", "malformed"),  # TSFT announced but no room for it
    (b"\x00\x00\x0c\x00\x00\x00\x00\x60\x00\x00\x00\x00", "malformed"),  # namespace bits 29 and 30 together
])
def test_parse_radiotap__bad_headers_are_counted(raw: bytes, outcome: str) -> None:
    frame, stats = parse(raw)
    assert frame is None and getattr(stats, outcome) == 1


def test_parse_radiotap__other_frames_are_not_probes() -> None:
    beacon = Dot11(type=0, subtype=8, addr2="00:11:22:33:44:55") / Dot11Elt(ID=0, info=b"shop")
    data = Dot11(type=2, subtype=0, addr2="00:11:22:33:44:55") / b"payload"
    ack = Dot11(type=1, subtype=13)
    for pkt in (beacon, data, ack):
        frame, stats = parse(bytes(RadioTap() / pkt))
        assert frame is None and stats.not_probe == 1
    fcs_beacon = RadioTap(present="Flags", Flags="FCS") / Dot11FCS(type=0, subtype=8) / Dot11Elt(ID=0, info=b"x")
    assert parse(bytes(fcs_beacon))[1].not_probe == 1


def test_parse_radiotap__memoryview_input_parses_like_bytes() -> None:
    raw = bytes(RadioTap(present="dBm_AntSignal", dBm_AntSignal=-30) / probe())
    assert parse_radiotap(memoryview(b"xx" + raw)[2:], ParseStats()) == parse(raw)[0]


def test_parse_radiotap__ht_control_field_is_skipped() -> None:
    plain = bytes(RadioTap() / probe())
    # Order bit set: a 4-byte HT control field sits between the header and the elements.
    with_htc = bytearray(plain[:8] + plain[8:8 + 24] + b"\x00\x00\x00\x00" + plain[8 + 24:])
    with_htc[8 + 1] |= 0x80
    frame = parse(bytes(with_htc))[0]
    assert frame is not None and frame == parse(plain)[0]


def test_parse_radiotap__probe_without_leading_ssid_is_malformed() -> None:
    frame, stats = parse(bytes(RadioTap() / probe(ies=elements()[1:])))
    assert frame is None and stats.malformed == 1


def test_parse_80211__bare_frames_parse_like_radiotap_ones() -> None:
    dot11 = bytes(probe(ies=elements(ssid=b"abc")))
    stats = ParseStats()
    frame = parse_80211(dot11, stats, rssi=-70, freq=2412)
    via_radiotap = parse(bytes(RadioTap(present="Channel+dBm_AntSignal", ChannelFrequency=2412,
                                        dBm_AntSignal=-70)) + dot11)[0]
    assert frame is not None and frame == via_radiotap and frame.channel == 1 and frame.ssid_len == 3
    with_fcs = bytes(probe(ies=elements(ssid=b"abc"), fcs=True))
    assert parse_80211(with_fcs, stats, rssi=-70, freq=2412, fcs=True) == frame
    assert parse_80211(with_fcs, stats) is None and stats.truncated == 1  # the FCS read as an element overruns


# --- fingerprint -------------------------------------------------------------------------------------------------

def fingerprint(mac: str = "da:a1:19:00:00:01", sc: int = 0x100, **kwargs: object) -> int:
    frame = parse(bytes(RadioTap() / probe(mac=mac, sc=sc, ies=elements(**kwargs))))[0]  # type: ignore[arg-type]
    assert frame is not None
    return frame.fingerprint


def test_fingerprint__same_model_differing_in_volatile_fields_is_identical() -> None:
    base = fingerprint()
    assert fingerprint(mac="6e:00:00:ab:cd:ef") == base
    assert fingerprint(sc=0xFFF0) == base
    assert fingerprint(ssid=b"HomeNetwork-5G") == base
    assert fingerprint(channel=11) == base
    assert fingerprint(uuid=bytes(range(16))) == base
    smps = bytes([HT_CAPS[0] ^ 0x0C]) + HT_CAPS[1:]  # dynamic SM power save toggled
    assert fingerprint(ht=smps) == base
    assert 0 <= base < 2**64


def test_fingerprint__is_stable_across_processes_and_runs() -> None:
    # Pinned: a BLAKE2b digest of the canonical elements, not Python's per-process salted hash(). Changing the
    # canonical form changes every stored fingerprint, so it must be a deliberate act that updates this value.
    assert fingerprint() == 0x8F1C81FC42DB57EA
    protocol._FINGERPRINTS.clear()  # the memo and a fresh walk agree
    assert fingerprint() == 0x8F1C81FC42DB57EA


def test_fingerprint__differs_when_capabilities_or_order_differ() -> None:
    base = fingerprint()
    other_ht = HT_CAPS[:3] + b"\x00" + HT_CAPS[4:]  # one spatial stream less
    assert fingerprint(ht=other_ht) != base
    reordered = elements()
    reordered[5], reordered[6] = reordered[6], reordered[5]
    frame = parse(bytes(RadioTap() / probe(ies=reordered)))[0]
    assert frame is not None and frame.fingerprint != base
    other_vendor = [*elements()[:-1], Dot11Elt(ID=221, info=bytes.fromhex("506f9a0902020025"))]
    frame = parse(bytes(RadioTap() / probe(ies=other_vendor)))[0]
    assert frame is not None and frame.fingerprint != base
    no_he = [e for e in elements() if e.ID != 255]
    frame = parse(bytes(RadioTap() / probe(ies=no_he)))[0]
    assert frame is not None and frame.fingerprint != base


def test_fingerprint__5ghz_frame_without_ds_element_matches_only_by_its_own_rates() -> None:
    with_ds = elements()
    without_ds = [e for e in elements() if e.ID != 3]
    a = parse(bytes(RadioTap() / probe(ies=with_ds)))[0]
    b = parse(bytes(RadioTap() / probe(ies=without_ds)))[0]
    assert a is not None and b is not None and a.fingerprint == b.fingerprint  # DS is left out entirely


# --- truncation and fuzzing --------------------------------------------------------------------------------------

def element_boundaries(raw: bytes, start: int) -> set[int]:
    """Lengths at which ``raw`` ends exactly after a whole element (a shorter but valid probe request)."""
    ends, pos = set(), start + 24
    while pos < len(raw):
        ends.add(pos)
        pos += 2 + raw[pos + 1]
    ends.add(pos)
    return ends


def test_parse_radiotap__every_truncation_is_skipped_and_counted() -> None:
    raw = bytes(RadioTap(present="TSFT+Flags+Channel+dBm_AntSignal", ChannelFrequency=2437, dBm_AntSignal=-50)
                / probe(ies=elements(ssid=b"cafe")))
    it_len = raw[2]
    valid_ends = element_boundaries(raw, it_len)
    full = parse(raw)[0]
    assert full is not None
    for length in range(len(raw)):
        frame, stats = parse(raw[:length])
        if length in valid_ends and length > it_len + 24:
            assert frame is not None and (frame.mac, frame.seq, frame.rssi) == (full.mac, full.seq, full.rssi)
        else:
            assert frame is None and stats.truncated + stats.malformed == 1, (length, stats)


def test_parse_radiotap__every_truncation_with_fcs_is_skipped() -> None:
    raw = bytes(RadioTap(present="Flags+dBm_AntSignal", Flags="FCS", dBm_AntSignal=-50) / probe(fcs=True))
    for length in range(len(raw)):
        frame, stats = parse(raw[:length])
        assert frame is None and stats.probes == 0


VALID = bytes(RadioTap(present="TSFT+Flags+Rate+Channel+dBm_AntSignal", ChannelFrequency=2437, dBm_AntSignal=-50)
              / probe())
EXTENDED = radiotap_bytes(*multi_antenna(-50, [-52, -58])) + bytes(probe())


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from([VALID, EXTENDED]),
       edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255), st.sampled_from("sid")), max_size=6))
def test_parse_radiotap__mutated_frames_never_raise(base: bytes, edits: list[tuple[int, int, str]]) -> None:
    raw = bytearray(base)
    for where, value, kind in edits:
        index = where % (len(raw) + 1)
        if kind == "s" and index < len(raw):
            raw[index] = value
        elif kind == "i":
            raw.insert(index, value)
        elif index < len(raw):
            del raw[index]
    parse(bytes(raw))  # asserts each frame is counted exactly once
    parse(bytes(raw), verify_fcs=False)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_radiotap__random_bytes_never_raise(raw: bytes) -> None:
    parse(raw)
    stats = ParseStats()
    parse_80211(raw, stats)
    parse_80211(raw, stats, fcs=True)
    assert stats.frames == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_radiotap__random_elements_never_raise(tail: bytes) -> None:
    parse(VALID[:VALID[2] + 24] + tail)


# --- channels -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("freq", "channel"), [
    (2412, 1), (2437, 6), (2472, 13), (2484, 14), (5180, 36), (5825, 165), (5955, 1), (5935, 2), (6415, 93),
    (7115, 233), (0, None), (2400, None), (5181, None), (None, None),
])
def test_channel_of__maps_band_frequencies(freq: int | None, channel: int | None) -> None:
    assert channel_of(freq) == channel


# --- sniffer node lines ------------------------------------------------------------------------------------------

NODE_LINE = {"mac": "aa:bb:cc:dd:ee:ff", "rssi": -61, "ch": 6, "seq": 1234, "ts": 1795450000.123,
             "fp": "9F3A", "ssid_len": 0, "node": "sn-1"}


def node(line: bytes) -> tuple[NodeReport | None, ParseStats]:
    stats = ParseStats()
    report = parse_node_line(line, stats)
    assert stats.frames == 1 and stats.probes + stats.malformed == 1
    return report, stats


def test_parse_node_line__valid_line() -> None:
    report, _ = node(json.dumps(NODE_LINE).encode() + b"\n")
    assert report == NodeReport(mac=bytes.fromhex("aabbccddeeff"), randomized=True, rssi=-61, channel=6, seq=1234,
                                ts=1795450000.123, fp="0000000000009f3a", ssid_len=0, node="sn-1")


def test_parse_node_line__optional_fields_may_be_missing_or_null() -> None:
    line = {"mac": "00-1A-2B-3C-4D-5E", "rssi": -90, "ch": 149, "seq": 0, "ts": None}
    report, _ = node(json.dumps(line).encode())
    assert report is not None
    assert (report.mac, report.randomized, report.ts, report.fp, report.ssid_len, report.node) == (
        bytes.fromhex("001a2b3c4d5e"), False, None, None, 0, None)
    report, _ = node(json.dumps({**line, "mac": "001a2b3c4d5e", "ts": 1795450000, "extra": [1]}).encode())
    assert report is not None and report.ts == 1795450000.0 and isinstance(report.ts, float)


@pytest.mark.parametrize("missing", ["mac", "rssi", "ch", "seq"])
def test_parse_node_line__missing_required_field_is_counted(missing: str) -> None:
    line = {k: v for k, v in NODE_LINE.items() if k != missing}
    report, stats = node(json.dumps(line).encode())
    assert report is None and stats.malformed == 1


@pytest.mark.parametrize("mac", ["aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb-cc:dd:ee:ff", "gg:bb:cc:dd:ee:ff",
                                 "aabbccddeeff0", "", "aa:bb:cc:dd:ee:f", 12345, None])
def test_parse_node_line__bad_mac_is_counted(mac: object) -> None:
    report, stats = node(json.dumps({**NODE_LINE, "mac": mac}).encode())
    assert report is None and stats.malformed == 1


@pytest.mark.parametrize(("key", "value"), [
    ("rssi", 5), ("rssi", -200), ("rssi", True), ("rssi", -61.5), ("ch", 0), ("ch", "6"), ("seq", 4096),
    ("ts", "now"), ("ts", -1), ("ts", 1e13), ("fp", "xyz"), ("fp", "0" * 17), ("fp", 12), ("ssid_len", 33),
    ("node", ""), ("node", "x" * 65), ("node", "a\nb"), ("node", 7),
])
def test_parse_node_line__bad_values_are_counted(key: str, value: object) -> None:
    report, stats = node(json.dumps({**NODE_LINE, key: value}).encode())
    assert report is None and stats.malformed == 1


@pytest.mark.parametrize("line", [b"", b"not json", b"{", b"[1, 2]", b'"mac"', b"\xff\xfe{}", b"[" * 5000, b"null",
                                  b'{"mac": "aa:bb:cc:dd:ee:ff", "rssi": NaN}'])
def test_parse_node_line__non_json_is_counted(line: bytes) -> None:
    report, stats = node(line)
    assert report is None and stats.malformed == 1


def test_parse_node_line__overlong_line_is_counted_without_decoding() -> None:
    line = json.dumps({**NODE_LINE, "pad": "x" * MAX_NODE_LINE}).encode()
    report, stats = node(line)
    assert report is None and stats.malformed == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_node_line__random_bytes_never_raise(line: bytes) -> None:
    node(line)
