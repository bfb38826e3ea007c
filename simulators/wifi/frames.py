"""Frame bytes: radiotap headers (optionally extended bitmaps, two antennas, FCS) around 802.11 probe requests."""

from __future__ import annotations

import struct
import zlib

BROADCAST = b"\xff" * 6

# Radiotap presence bits.
_TSFT, _FLAGS, _RATE, _CHANNEL, _DBM_SIGNAL, _ANTENNA, _RX_FLAGS = 0, 1, 2, 3, 5, 11, 14
_RADIOTAP_NS_NEXT, _EXT = 29, 31
FLAG_FCS = 0x10
_CHAN_2GHZ_CCK = 0x00A0
_CHAN_5GHZ_OFDM = 0x0140

_PRESENT = (1 << _TSFT) | (1 << _FLAGS) | (1 << _RATE) | (1 << _CHANNEL) | (1 << _DBM_SIGNAL) | (1 << _RX_FLAGS)
_PER_ANTENNA = (1 << _DBM_SIGNAL) | (1 << _ANTENNA)


def frequency(channel: int) -> int:
    """Centre frequency in MHz of a 2.4 or 5 GHz channel."""
    if channel == 14:
        return 2484
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    return 5000 + 5 * channel


def mac_bytes(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` as 6 bytes."""
    return bytes.fromhex(text.replace(":", ""))


def mac_text(raw: bytes) -> str:
    """6 bytes as lower-case ``aa:bb:cc:dd:ee:ff``."""
    return raw.hex(":")


def probe_request(mac: bytes, seq: int, body: bytes) -> bytes:
    """An 802.11 probe request (FC 0x0040) from ``mac`` to broadcast with sequence number ``seq`` and IEs ``body``."""
    return b"\x40\x00\x00\x00" + BROADCAST + mac + BROADCAST + struct.pack("<H", (seq & 0x0FFF) << 4) + body


def radiotap(tsft_us: int, channel: int, dbm: int, chains: tuple[int, ...] = (), fcs: bool = False) -> bytes:
    """A radiotap header: TSFT, Flags, Rate, Channel, dBm signal, RX flags; per-chain signal+antenna in extra words.

    With chains, the first present word sets Ext and Radiotap-NS-next and each chain adds one presence word
    (dBm signal + antenna) as Linux drivers with several antennas do; fields follow radiotap alignment rules.
    """
    words = [_PRESENT]
    if chains:
        words[0] |= (1 << _RADIOTAP_NS_NEXT) | (1 << _EXT)
        for i in range(len(chains)):
            last = i == len(chains) - 1
            words.append(_PER_ANTENNA | (0 if last else (1 << _RADIOTAP_NS_NEXT) | (1 << _EXT)))
    head_len = 4 + 4 * len(words)
    pad = (-head_len) % 8  # TSFT is 8-byte aligned
    rate = 2 if channel <= 14 else 12  # 1 Mb/s CCK or 6 Mb/s OFDM, in 500 kb/s units
    chan_flags = _CHAN_2GHZ_CCK if channel <= 14 else _CHAN_5GHZ_OFDM
    fields = b"\x00" * pad + struct.pack(
        "<QBBHHbxH", tsft_us & 0xFFFF_FFFF_FFFF_FFFF, FLAG_FCS if fcs else 0, rate, frequency(channel), chan_flags,
        dbm, 0,
    )
    for index, chain_dbm in enumerate(chains):
        fields += struct.pack("<bB", chain_dbm, index)
    length = head_len + len(fields)
    return struct.pack("<BBH", 0, 0, length) + struct.pack(f"<{len(words)}I", *words) + fields


def with_fcs(mpdu: bytes) -> bytes:
    """The MPDU followed by its CRC-32 frame check sequence (little-endian)."""
    return mpdu + struct.pack("<I", zlib.crc32(mpdu) & 0xFFFF_FFFF)
