"""802.11 information elements for probe requests: builders for the elements phones actually send."""

from __future__ import annotations

import struct

RATES_24 = b"\x02\x04\x0b\x16\x0c\x12\x18\x24"  # 1, 2, 5.5, 11, 6, 9, 12, 18 Mb/s
RATES_24_BASIC = b"\x82\x84\x8b\x96\x0c\x12\x18\x24"  # the same with the basic-rate bit (embedded chips)
EXT_RATES_24 = b"\x30\x48\x60\x6c"  # 24, 36, 48, 54 Mb/s
RATES_5 = b"\x8c\x12\x98\x24\xb0\x48\x60\x6c"  # 6 .. 54 Mb/s, OFDM only

OUI_APPLE = b"\x00\x17\xf2"
OUI_MICROSOFT = b"\x00\x50\xf2"
OUI_BROADCOM = b"\x00\x10\x18"
OUI_EPIGRAM = b"\x00\x90\x4c"
OUI_MEDIATEK = b"\x00\x0c\xe7"
OUI_QUALCOMM = b"\x00\x03\x7f"


def element(eid: int, body: bytes) -> bytes:
    """One TLV element."""
    if len(body) > 255:
        raise ValueError("element body longer than 255 bytes")
    return bytes((eid, len(body))) + body


def ssid(name: bytes) -> bytes:
    """SSID element; empty for a wildcard probe."""
    return element(0, name)


def rates(channel: int, rates_24: bytes = RATES_24) -> bytes:
    """Supported (and, on 2.4 GHz, extended) rates, plus the DS parameter set on 2.4 GHz."""
    if channel > 14:
        return element(1, RATES_5)
    return element(1, rates_24) + element(50, EXT_RATES_24) + element(3, bytes((channel,)))


def ht_caps(cap_info: int, ampdu: int, streams: int, ext: int = 0, txbf: int = 0) -> bytes:
    """HT capabilities (45): capability info, A-MPDU parameters, MCS set for 1–2 streams, ext, TxBF, ASEL."""
    mcs = (b"\xff" * streams).ljust(16, b"\x00")
    return element(45, struct.pack("<HB16sHIB", cap_info, ampdu, mcs, ext, txbf, 0))


def ext_caps(octets: bytes) -> bytes:
    """Extended capabilities (127)."""
    return element(127, octets)


def interworking(access_network: int = 0x0F) -> bytes:
    """Interworking (107): the access-network type phones advertise when Passpoint is on."""
    return element(107, bytes((access_network,)))


def _mcs_map(streams: int) -> int:
    """A VHT/HE MCS map: MCS 0–9 (0b10) for the first ``streams`` streams, not supported (0b11) for the rest."""
    value = 0xFFFF
    for s in range(streams):
        value &= ~(0b11 << (2 * s))
        value |= 0b10 << (2 * s)
    return value


def vht_caps(info: int, streams: int) -> bytes:
    """VHT capabilities (191) with rx/tx MCS maps for 1–2 spatial streams."""
    mcs_map = _mcs_map(streams)
    return element(191, struct.pack("<IHHHH", info, mcs_map, 0, mcs_map, 0))


def he_caps(mac: bytes, phy: bytes, streams: int) -> bytes:
    """HE capabilities as element extension 255/35: MAC caps (6), PHY caps (11), MCS/NSS for ≤ 80 MHz."""
    mcs_map = _mcs_map(streams)
    return element(255, b"\x23" + mac.ljust(6, b"\x00")[:6] + phy.ljust(11, b"\x00")[:11]
                   + struct.pack("<HH", mcs_map, mcs_map))


def vendor(oui: bytes, kind: int, data: bytes = b"") -> bytes:
    """Vendor-specific element (221): OUI, vendor type, data."""
    return element(221, oui + bytes((kind,)) + data)


def _wps_attr(kind: int, value: bytes) -> bytes:
    return struct.pack(">HH", kind, len(value)) + value


def wps(uuid: bytes, manufacturer: str, model: str, device_name: str, category: int = 10, sub: int = 5) -> bytes:
    """Microsoft WPS vendor element (00:50:f2 type 4) as an enrollee probe, with the device's UUID-E."""
    attrs = b"".join((
        _wps_attr(0x104A, b"\x10"),  # version 1.0
        _wps_attr(0x103A, b"\x00"),  # request type: enrollee, info only
        _wps_attr(0x1008, b"\x43\x88"),  # config methods
        _wps_attr(0x1047, uuid),  # UUID-E
        _wps_attr(0x1054, struct.pack(">H4sH", category, OUI_MICROSOFT + b"\x04", sub)),  # primary device type
        _wps_attr(0x103C, b"\x03"),  # RF bands: 2.4 + 5 GHz
        _wps_attr(0x1002, b"\x00\x00"),  # association state
        _wps_attr(0x1009, b"\x00\x00"),  # configuration error
        _wps_attr(0x1012, b"\x00\x00"),  # device password id
        _wps_attr(0x1021, manufacturer.encode()),
        _wps_attr(0x1023, model.encode()),
        _wps_attr(0x1024, b"1"),
        _wps_attr(0x1011, device_name.encode()),
        _wps_attr(0x1049, b"\x00\x37\x2a\x00\x01\x20"),  # WFA vendor extension: version 2.0
    ))
    return vendor(OUI_MICROSOFT, 4, attrs)
