"""Pure probe-request parsing: radiotap + 802.11 bytes in, a typed tuple out (node JSON lines: ``node.py``).

No I/O, no sleeping, no scapy: the driver (or the pcap reader) hands over the bytes of one frame and gets back a
``ProbeFrame`` or ``None``. Everything that is not a well-formed probe request is counted in ``ParseStats`` and
skipped; nothing here raises on bad input. The hot path runs at 100k frames/s, so the code works on ``bytes``
with integer indexing and precomputed ``struct`` readers, and keeps two bounded memos: radiotap layouts by their
presence words, and fingerprints by the exact element bytes after the SSID. Nothing is keyed on a MAC.

Radiotap (https://www.radiotap.org): every field is aligned to its natural size relative to the start of the
header; presence words chain with bit 31; bit 29 starts a new radiotap namespace (Linux puts one per receive
chain there, each with its own dBm antenna signal) and bit 30 a vendor namespace, whose data starts with a
6-byte header (OUI, sub-namespace, skip length) that tells how many bytes to skip. A present bit we do not know
the size of (bits past 27 in the first word of a namespace, TLVs, or any bit in a continuation word of the
radiotap namespace) stops field parsing there: values already read are kept and the 802.11 frame is still
found through ``it_len``.

IE fingerprint (``ProbeFrame.fingerprint``): the first 8 bytes of BLAKE2b over a canonical byte string built
from the information elements *in their order in the frame*. Each element contributes ``id, length, content``
as follows; what is masked is what changes between frames of one device model (or carries a user's data)::

    SSID (0)                      nothing at all        the network names and their lengths are the user's
    DS parameter set (3)          nothing at all        the current channel; absent on 5/6 GHz
    supported rates (1), extended rates (50), request (10), RM enabled capabilities (70), VHT capabilities
    (191), extended capabilities (127)
                                  full content          fixed by the chipset and driver
    HT capabilities (45)          content, SM power-save bits (bits 2-3 of the first byte) zeroed
                                                        dynamic SM power save toggles with the device's power state
    supported operating classes (59)
                                  content, current operating class (first byte) zeroed
                                                        the current class follows the channel
    vendor specific (221)         OUI and OUI type only the payload holds volatile data: WPS UUID-E, P2P device
                                                        address and name, Apple's per-scan flags
    element extension (255)       extension id; full content for HE capabilities (35), HE 6 GHz band
                                  capabilities (59) and EHT capabilities (108)
                                                        other extensions carry keys or per-scan parameters
                                                        (OWE Diffie-Hellman, FILS nonces)
    any other element             id only (length 0)    unknown content may be volatile; its presence and place
                                                        in the order still count

Supported rates differ between bands, so one device has one fingerprint per band; that is expected.
"""

import struct
from dataclasses import dataclass
from hashlib import blake2b
from typing import Final, NamedTuple
from zlib import crc32

__all__ = [
    "ParseStats",
    "ProbeFrame",
    "channel_of",
    "parse_80211",
    "parse_radiotap",
]


class ProbeFrame(NamedTuple):
    """One probe request. ``mac`` is the raw transmitter address: keep it in memory only and hash it at once."""

    mac: bytes  # 6 bytes, addr2
    randomized: bool  # locally-administered bit of the first octet
    rssi: int | None  # dBm: radiotap combined signal, else the strongest antenna; None when not reported
    freq_mhz: int | None
    channel: int | None
    seq: int  # 12-bit sequence number
    ssid_len: int  # length of the leading SSID element, 0 for a wildcard probe; the SSID itself is never kept
    fingerprint: int  # 64-bit IE fingerprint, see the module docstring


@dataclass(slots=True)
class ParseStats:
    """Parser counters for device status: each call adds one to ``frames`` and one to exactly one outcome below."""

    frames: int = 0
    probes: int = 0
    not_probe: int = 0  # a well-formed frame that is not a probe request (or a node line reporting something else)
    malformed: int = 0  # inconsistent headers, or an invalid node line
    truncated: int = 0  # a header, element or frame runs past the end of the bytes
    bad_fcs: int = 0  # the radiotap Flags say the FCS failed, or the FCS we check does not match


_U16: Final = struct.Struct("<H").unpack_from
_U32: Final = struct.Struct("<I").unpack_from

# (alignment, size) of the radiotap namespace fields, by present bit 0..27.
_RT_FIELDS: Final = (
    (8, 8),  # 0 TSFT
    (1, 1),  # 1 Flags
    (1, 1),  # 2 Rate
    (2, 4),  # 3 Channel: u16 frequency, u16 flags
    (2, 2),  # 4 FHSS
    (1, 1),  # 5 dBm antenna signal
    (1, 1),  # 6 dBm antenna noise
    (2, 2),  # 7 lock quality
    (2, 2),  # 8 TX attenuation
    (2, 2),  # 9 dB TX attenuation
    (1, 1),  # 10 dBm TX power
    (1, 1),  # 11 antenna
    (1, 1),  # 12 dB antenna signal
    (1, 1),  # 13 dB antenna noise
    (2, 2),  # 14 RX flags
    (2, 2),  # 15 TX flags
    (1, 1),  # 16 RTS retries
    (1, 1),  # 17 data retries
    (4, 8),  # 18 XChannel: u32 flags, u16 frequency, u8 channel, u8 max power
    (1, 3),  # 19 MCS
    (4, 8),  # 20 A-MPDU status
    (2, 12),  # 21 VHT
    (8, 12),  # 22 timestamp
    (2, 12),  # 23 HE
    (2, 12),  # 24 HE-MU
    (2, 6),  # 25 HE-MU other user
    (1, 1),  # 26 0-length PSDU
    (2, 4),  # 27 L-SIG
)
_BIT_FLAGS: Final = 1
_BIT_CHANNEL: Final = 3
_BIT_ANTSIGNAL: Final = 5
_BIT_XCHANNEL: Final = 18
_NS_RADIOTAP: Final = 0x2000_0000
_NS_VENDOR: Final = 0x4000_0000
_EXT: Final = 0x8000_0000
_KNOWN_BITS: Final = (1 << len(_RT_FIELDS)) - 1
_FIELD_BITS: Final = _NS_RADIOTAP - 1  # bits 0..28; 29-31 switch namespace or chain words

_F_FCS: Final = 0x10  # radiotap Flags: the frame ends with a 4-byte FCS
_F_BAD_FCS: Final = 0x40  # radiotap Flags: the FCS check failed

_PROBE_REQ_FC0: Final = 0x40  # frame control byte 0: version 0, type 0 (management), subtype 4
_FC1_ORDER: Final = 0x80  # +HTC: a 4-byte HT control field follows the management header
_HDR: Final = 24


class _Layout(NamedTuple):
    """Where the fields we read sit in a radiotap header, for one set of presence words."""

    flags: int  # offset or -1
    signal: int  # offset of the combined dBm antenna signal or -1
    freq: int  # offset of the channel frequency (Channel, else XChannel) or -1
    antennas: tuple[int, ...]  # offsets of per-chain dBm antenna signals in later radiotap namespaces
    need: int  # the header must be at least this long


_MALFORMED_LAYOUT: Final = _Layout(-1, -1, -1, (), 1 << 30)
_LAYOUTS: dict[int | bytes, _Layout] = {}
_LAYOUT_CACHE_MAX: Final = 256  # a capture has one or two layouts; the bound only stops garbage from growing it


def _layout(buf: bytes, words_end: int, it_len: int) -> tuple[_Layout, bool]:
    """Walk the presence words of a radiotap header; returns the layout and whether it may be cached.

    The layout depends on the presence words alone unless a vendor namespace is present (its skip length is
    data), so only vendor-free layouts are cacheable.
    """
    flags = signal = freq = -1
    antennas: list[int] = []
    off = words_end
    pos = 4
    vendor = False  # the namespace the current word belongs to
    first_word = True  # the current word is the first of its namespace
    rt_namespace = 0  # index of the current radiotap namespace; 0 holds the combined values
    stopped = False
    cacheable = True
    while pos < words_end:
        word = _U32(buf, pos)[0]
        pos += 4
        if word & _NS_RADIOTAP and word & _NS_VENDOR:
            return _MALFORMED_LAYOUT, False
        if stopped:
            pass
        elif vendor:
            if first_word:
                off = (off + 1) & ~1
                if off + 6 > it_len:
                    return _MALFORMED_LAYOUT, False
                off += 6 + _U16(buf, off + 4)[0]
                cacheable = False
        else:
            bits = word & _FIELD_BITS
            if not first_word:
                stopped = bits != 0  # no radiotap field is defined past bit 28
                bits = 0
            elif bits & ~_KNOWN_BITS:
                # Fields below the first unknown bit can still be read; after it the layout is unknowable.
                stopped = True
                bits &= _KNOWN_BITS
            bit = 0
            while bits:
                if bits & 1:
                    align, size = _RT_FIELDS[bit]
                    off = (off + align - 1) & -align
                    if rt_namespace == 0:
                        if bit == _BIT_FLAGS:
                            flags = off
                        elif bit == _BIT_ANTSIGNAL:
                            signal = off
                        elif bit == _BIT_CHANNEL:
                            freq = off
                        elif bit == _BIT_XCHANNEL and freq < 0:
                            freq = off + 4
                    elif bit == _BIT_ANTSIGNAL:
                        antennas.append(off)
                    off += size
                bits >>= 1
                bit += 1
        if word & _NS_RADIOTAP:
            vendor, first_word = False, True
            rt_namespace += 1
        elif word & _NS_VENDOR:
            vendor, first_word = True, True
        else:
            first_word = False
    return _Layout(flags, signal, freq, tuple(antennas), off), cacheable


def _channels() -> dict[int, int]:
    table = {2407 + 5 * ch: ch for ch in range(1, 14)}
    table[2484] = 14
    table.update({4000 + 5 * ch: ch for ch in range(181, 200)})  # 4.9 GHz (Japan, public safety)
    table.update({5000 + 5 * ch: ch for ch in range(1, 186)})  # 5 GHz
    table[5935] = 2  # 6 GHz channel 2 sits below the regular 6 GHz grid
    table.update({5950 + 5 * ch: ch for ch in range(1, 234)})  # 6 GHz
    return table


_CHANNEL_OF: Final = _channels()


def channel_of(freq_mhz: int | None) -> int | None:
    """The IEEE channel number of a centre frequency in MHz (2.4, 4.9, 5 and 6 GHz), or ``None``."""
    return None if freq_mhz is None else _CHANNEL_OF.get(freq_mhz)


# How each element id enters the fingerprint (see the module docstring).
_SKIP, _ID_ONLY, _FULL, _HT, _OPCLASS, _VENDOR, _EXTENSION = range(7)
_ELEMENT_RULE: Final = bytes(
    {0: _SKIP, 3: _SKIP, 1: _FULL, 50: _FULL, 10: _FULL, 70: _FULL, 191: _FULL, 127: _FULL,
     45: _HT, 59: _OPCLASS, 221: _VENDOR, 255: _EXTENSION}.get(eid, _ID_ONLY)
    for eid in range(256)
)
_FULL_EXTENSIONS: Final = frozenset({35, 59, 108})  # HE capabilities, HE 6 GHz band capabilities, EHT capabilities
_HT_SMPS_MASK: Final = 0xF3


def _fingerprint(ies: bytes) -> int:
    """The 64-bit fingerprint of the elements in ``ies`` (the SSID element already cut off), or -1 if truncated.

    The canonical string starts as a copy of the elements and is edited in place: whole-content elements, the
    common case, cost nothing but the walk.
    """
    canon = bytearray(ies)
    end = len(ies)
    pos = 0
    cut = 0  # bytes removed from ``canon`` so far: element at ``pos`` in ``ies`` is at ``pos - cut`` in ``canon``
    rules = _ELEMENT_RULE
    while pos < end:
        if pos + 2 > end:
            return -1
        eid = ies[pos]
        length = ies[pos + 1]
        nxt = pos + 2 + length
        if nxt > end:
            return -1
        rule = rules[eid]
        if rule != _FULL:
            at = pos - cut
            if rule == _ID_ONLY:
                del canon[at + 2:at + 2 + length]
                canon[at + 1] = 0
                cut += length
            elif rule == _SKIP:
                del canon[at:at + 2 + length]
                cut += 2 + length
            elif rule == _VENDOR:
                if length > 4:
                    del canon[at + 6:at + 2 + length]
                    canon[at + 1] = 4
                    cut += length - 4
            elif rule == _EXTENSION:
                if length > 1 and ies[pos + 2] not in _FULL_EXTENSIONS:
                    del canon[at + 3:at + 2 + length]
                    canon[at + 1] = 1
                    cut += length - 1
            elif length:
                canon[at + 2] &= _HT_SMPS_MASK if rule == _HT else 0
        pos = nxt
    return int.from_bytes(blake2b(canon, digest_size=8).digest(), "big")


# Fingerprints by the exact element bytes that follow the leading SSID element. Phones of one model send identical
# elements (only the DS channel byte and a few vendor payloads vary), so most frames skip the element walk. Keys
# are element bytes, never the transmitter address, though a vendor payload in them can hold a WPS UUID-E or a
# Wi-Fi Direct device address: like the frame itself the memo lives in memory only, is bounded, is emptied when
# full, and is never logged or stored.
_FINGERPRINTS: dict[bytes, int] = {}
_FINGERPRINTS_MAX: Final = 4096
_new_frame: Final = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def _dot11(
    buf: bytes, start: int, end: int, stats: ParseStats, rssi: int | None, freq: int | None
) -> ProbeFrame | None:
    """Parse the 802.11 frame in ``buf[start:end]`` (FCS already removed)."""
    if end - start < _HDR:
        if end > start and buf[start] != _PROBE_REQ_FC0:
            stats.not_probe += 1
        else:
            stats.truncated += 1
        return None
    if buf[start] != _PROBE_REQ_FC0:
        stats.not_probe += 1
        return None
    pos = start + (_HDR + 4 if buf[start + 1] & _FC1_ORDER else _HDR)
    if pos + 2 > end:
        stats.truncated += 1
        return None
    if buf[pos] != 0:  # the standard puts the SSID element first in every probe request
        stats.malformed += 1
        return None
    ssid_len = buf[pos + 1]
    pos += 2 + ssid_len
    if pos > end:
        stats.truncated += 1
        return None
    ies = buf[pos:end]
    fingerprint = _FINGERPRINTS.get(ies)
    if fingerprint is None:
        fingerprint = _fingerprint(ies)
        if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
            _FINGERPRINTS.clear()
        _FINGERPRINTS[ies] = fingerprint
    if fingerprint < 0:
        stats.truncated += 1
        return None
    stats.probes += 1
    mac = buf[start + 10:start + 16]
    frame: ProbeFrame = _new_frame(ProbeFrame, (
        mac,
        mac[0] & 0x02 != 0,
        rssi,
        freq,
        _CHANNEL_OF.get(freq) if freq is not None else None,
        (buf[start + 22] | buf[start + 23] << 8) >> 4,
        ssid_len,
        fingerprint,
    ))
    return frame


def parse_radiotap(buf: bytes | memoryview, stats: ParseStats, *, verify_fcs: bool = True) -> ProbeFrame | None:
    """Parse one radiotap-framed 802.11 frame (pcap linktype 127); ``None`` for anything but a good probe request.

    With the radiotap FCS flag the last 4 bytes are the FCS: they are stripped and, with ``verify_fcs``,
    checked (a mismatch counts as ``bad_fcs``). A frame the driver already marked as a bad FCS is skipped.
    """
    stats.frames += 1
    if type(buf) is not bytes:
        buf = bytes(buf)  # one copy; integer indexing on bytes is what keeps this fast
    n = len(buf)
    if n < 8:
        stats.truncated += 1
        return None
    it_len = buf[2] | buf[3] << 8
    if buf[0] != 0 or it_len < 8:
        stats.malformed += 1
        return None
    if it_len > n:
        stats.truncated += 1
        return None
    word = _U32(buf, 4)[0]
    if word & _EXT:
        words_end = 8
        while word & _EXT:
            if words_end + 4 > it_len:
                stats.malformed += 1
                return None
            word = _U32(buf, words_end)[0]
            words_end += 4
        key: int | bytes = buf[4:words_end]
    else:
        words_end = 8
        key = word
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout, cacheable = _layout(buf, words_end, it_len)
        if cacheable and len(_LAYOUTS) < _LAYOUT_CACHE_MAX:
            _LAYOUTS[key] = layout
    flags_off, signal_off, freq_off, antennas, need = layout
    if need > it_len:
        stats.malformed += 1
        return None
    end = n
    if flags_off >= 0:
        flags = buf[flags_off]
        if flags & _F_BAD_FCS:
            stats.bad_fcs += 1
            return None
        if flags & _F_FCS:
            end = n - 4
            if end <= it_len:
                stats.truncated += 1
                return None
            if buf[it_len] != _PROBE_REQ_FC0:  # decided before the CRC: most frames on the air are not probes
                stats.not_probe += 1
                return None
            if verify_fcs and crc32(buf[it_len:end]) != _U32(buf, end)[0]:
                stats.bad_fcs += 1
                return None
    rssi: int | None = None
    if signal_off >= 0:
        rssi = buf[signal_off]
        if rssi > 127:
            rssi -= 256
    elif antennas:
        for off in antennas:  # signed bytes: the largest unsigned value is not the strongest signal
            value = buf[off] - 256 if buf[off] > 127 else buf[off]
            if rssi is None or value > rssi:
                rssi = value
    freq: int | None = None
    if freq_off >= 0:
        freq = buf[freq_off] | buf[freq_off + 1] << 8 or None
    return _dot11(buf, it_len, end, stats, rssi, freq)


def parse_80211(
    buf: bytes | memoryview, stats: ParseStats, rssi: int | None = None, freq: int | None = None, *, fcs: bool = False
) -> ProbeFrame | None:
    """Parse a bare 802.11 frame (pcap linktype 105) with signal and frequency known from elsewhere.

    ``fcs`` says the frame ends with a 4-byte FCS; it is stripped, not checked (nothing says it is valid).
    """
    stats.frames += 1
    if type(buf) is not bytes:
        buf = bytes(buf)
    end = len(buf) - 4 if fcs else len(buf)
    return _dot11(buf, 0, end, stats, rssi, freq)
