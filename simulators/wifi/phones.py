"""Device models: MAC randomization, burst timing, sequence numbers and IE sets per OS and phone model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from simulators.wifi import ies
from simulators.wifi.ies import OUI_APPLE, OUI_BROADCOM, OUI_EPIGRAM, OUI_MEDIATEK, OUI_QUALCOMM

Randomization = Literal["per_burst", "per_scan", "none"]
Role = Literal["phone", "staff", "infrastructure"]


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """How one model (hardware + OS) probes.

    Gaps between bursts are lognormal around ``active_gap_s`` (screen on) or ``idle_gap_s`` (screen off);
    ``seq_continue_p`` is the share of MAC changes after which the 12-bit sequence counter keeps running
    (the rest restart at a random value). ``variants`` are the IE sets after rates/DS the model sends (a phone
    picks one per burst); every phone of a model shares them, so an IE fingerprint is not a device.
    """

    key: str
    os: str
    role: Role
    randomization: Randomization
    oui: bytes  # the vendor OUI of the universal MAC
    seq_continue_p: float
    active_gap_s: float
    idle_gap_s: float
    variants: tuple[bytes, ...]
    variant_weights: tuple[float, ...]
    weight: float = 1.0  # share within its group (randomizing phones, stable phones, staff, infrastructure)
    gap_sigma: float = 0.55
    per_channel: tuple[int, int] = (1, 2)  # probes per channel in a burst
    burst_channels: tuple[int, ...] = (1, 6, 11)
    burst_span_ms: tuple[float, float] = (20.0, 100.0)
    scan_bursts: tuple[int, int] = (1, 1)  # bursts sharing one MAC under per-scan randomization
    la_prefix: bytes = b""  # fixed leading bytes of randomized MACs (Android's CID da:a1:19)
    five_ghz: bool = False
    directed_p: float = 0.03  # share of probes that name an SSID from the device's preferred list
    wps: str = ""  # "manufacturer/model" when the model adds a WPS element with a UUID-E
    rates_24: bytes = ies.RATES_24
    screen: bool = True  # phones have screen on/off states; fixed devices probe at one rate

    def fingerprint(self, variant: int) -> str:
        """The node-side IE fingerprint (16 hex digits) of one of this model's variants."""
        return hashlib.blake2b(f"{self.key}#{variant}".encode(), digest_size=8).hexdigest()


_IOS_EXT = ies.ext_caps(bytes.fromhex("0400080000000040"))
_IOS_HT = ies.ht_caps(0x002D, 0x17, 1)
_APPLE_VENDOR = ies.vendor(OUI_APPLE, 0x0A, b"\x00\x01\x04\x00\x00\x00")
_IOS17 = (_IOS_HT + _IOS_EXT + ies.vht_caps(0x0F8259B2, 2)
          + ies.he_caps(b"\x01\x08\x08\x1a", b"\x22\x20\x02\xc0\x0f\x03\x95\x18", 2))

MODELS: tuple[DeviceModel, ...] = (
    # Randomizing phones. iOS 16/17 and Android 13+: new MAC every burst, counter restarts (0–4.4% continue).
    DeviceModel(
        key="iphone-ios17", os="iOS 17", role="phone", randomization="per_burst", oui=b"\xf0\x18\x98",
        seq_continue_p=0.02, active_gap_s=25.0, idle_gap_s=110.0, five_ghz=True, weight=0.30,
        variants=(_IOS17 + _APPLE_VENDOR, ies.interworking() + _IOS17 + _APPLE_VENDOR), variant_weights=(0.8, 0.2),
    ),
    DeviceModel(
        key="iphone-ios16", os="iOS 16", role="phone", randomization="per_burst", oui=b"\x3c\x06\x30",
        seq_continue_p=0.044, active_gap_s=40.0, idle_gap_s=120.0, five_ghz=True, weight=0.15,
        variants=(
            _IOS_HT + _IOS_EXT + ies.vht_caps(0x0F8159B2, 2) + _APPLE_VENDOR,
            _IOS_HT + ies.interworking() + _IOS_EXT + ies.vht_caps(0x0F8159B2, 2) + _APPLE_VENDOR,
            _IOS_HT + _IOS_EXT + _APPLE_VENDOR,
        ),
        variant_weights=(0.6, 0.3, 0.1),
    ),
    # iOS 15: randomizes per burst too, but the sequence counter runs on across MAC changes (100%).
    DeviceModel(
        key="iphone-ios15", os="iOS 15", role="phone", randomization="per_burst", oui=b"\xa4\x83\xe7",
        seq_continue_p=1.0, active_gap_s=30.0, idle_gap_s=135.0, five_ghz=True, weight=0.07,
        variants=(_IOS_HT + ies.ext_caps(bytes.fromhex("0400080000000000")) + _APPLE_VENDOR,),
        variant_weights=(1.0,),
    ),
    DeviceModel(
        key="galaxy-android13", os="Android 13", role="phone", randomization="per_burst", oui=b"\x5c\x0a\x5b",
        seq_continue_p=0.03, active_gap_s=40.0, idle_gap_s=150.0, five_ghz=True, weight=0.25, per_channel=(1, 3),
        variants=(
            ies.ht_caps(0x01EF, 0x17, 2) + ies.ext_caps(bytes.fromhex("0000080000000040"))
            + ies.vht_caps(0x0391F9B2, 2) + ies.vendor(OUI_BROADCOM, 2, b"\x00\x00\x1c\x00\x00"),
            ies.ht_caps(0x01EF, 0x17, 2) + ies.ext_caps(bytes.fromhex("0000080000000040"))
            + ies.vht_caps(0x0391F9B2, 2) + ies.he_caps(b"\x01\x08\x08\x1a", b"\x22\x20\x02", 2)
            + ies.vendor(OUI_BROADCOM, 2, b"\x00\x00\x1c\x00\x00"),
        ),
        variant_weights=(0.5, 0.5),
    ),
    DeviceModel(
        key="pixel-android14", os="Android 14", role="phone", randomization="per_burst", oui=b"\x3c\x28\x6d",
        seq_continue_p=0.0, active_gap_s=35.0, idle_gap_s=140.0, five_ghz=True, weight=0.08,
        variants=(ies.ht_caps(0x016F, 0x17, 2) + ies.ext_caps(bytes.fromhex("000008800140004020"))
                  + ies.vht_caps(0x0F907032, 2) + ies.he_caps(b"\x03\x00\x08\x12", b"\x22\x20\x02", 2)
                  + ies.vendor(OUI_QUALCOMM, 1, b"\x00\x00\x00\x00"),),
        variant_weights=(1.0,),
    ),
    # Android 10–12 on MediaTek: a new MAC per scan (a few bursts), Google CID prefix, counter runs on.
    DeviceModel(
        key="redmi-android11", os="Android 11", role="phone", randomization="per_scan", oui=b"\x64\x09\x80",
        seq_continue_p=1.0, active_gap_s=20.0, idle_gap_s=90.0, weight=0.15, scan_bursts=(2, 5),
        la_prefix=b"\xda\xa1\x19", directed_p=0.08, wps="Xiaomi/Redmi Note 9",
        burst_channels=(1, 6, 11, 3, 9),
        variants=(ies.ht_caps(0x0121, 0x03, 1) + ies.ext_caps(bytes.fromhex("0400000000000040"))
                  + ies.vendor(OUI_MEDIATEK, 8, b"\x00\x00\x00\x00"),
                  ies.ht_caps(0x0121, 0x03, 1) + ies.ext_caps(bytes.fromhex("04000000000000"))),
        variant_weights=(0.7, 0.3),
    ),
    # Stable phones: older devices that probe with their universal MAC and leak their preferred networks.
    DeviceModel(
        key="galaxy-j5-android7", os="Android 7", role="phone", randomization="none", oui=b"\x8c\xf5\xa3",
        seq_continue_p=1.0, active_gap_s=30.0, idle_gap_s=120.0, weight=0.4, directed_p=0.25,
        wps="samsung/SM-J530F",
        variants=(ies.ht_caps(0x012C, 0x1B, 1) + ies.ext_caps(b"\x00\x00\x08\x00\x00\x00\x00\x40")
                  + ies.vendor(OUI_EPIGRAM, 0x33, b"\x2c\x01\x1b\xff" + bytes(22)),),
        variant_weights=(1.0,),
    ),
    DeviceModel(
        key="huawei-p20-android9", os="Android 9", role="phone", randomization="none", oui=b"\x00\xe0\xfc",
        seq_continue_p=1.0, active_gap_s=45.0, idle_gap_s=160.0, weight=0.35, five_ghz=True, directed_p=0.1,
        variants=(ies.ht_caps(0x01AD, 0x17, 2) + ies.ext_caps(bytes.fromhex("0000080000000040"))
                  + ies.vht_caps(0x0F8159B2, 2),
                  ies.ht_caps(0x01AD, 0x17, 2) + ies.ext_caps(bytes.fromhex("0000080000000040"))),
        variant_weights=(0.6, 0.4),
    ),
    DeviceModel(
        key="nokia-kaios", os="KaiOS 2.5", role="phone", randomization="none", oui=b"\x00\x1a\x16",
        seq_continue_p=1.0, active_gap_s=60.0, idle_gap_s=180.0, weight=0.25, per_channel=(1, 1),
        variants=(ies.ht_caps(0x1020, 0x00, 1),), variant_weights=(1.0,),
    ),
    # Staff handhelds: enterprise Android with randomization turned off by the MDM; they roam-scan often.
    DeviceModel(
        key="zebra-tc52", os="Android 10 (MDM)", role="staff", randomization="none", oui=b"\x00\x15\x70",
        seq_continue_p=1.0, active_gap_s=20.0, idle_gap_s=60.0, five_ghz=True, directed_p=0.2,
        variants=(ies.ht_caps(0x01EF, 0x17, 2) + ies.ext_caps(bytes.fromhex("0000080000000040"))
                  + ies.vht_caps(0x0391F9B2, 2) + ies.vendor(OUI_QUALCOMM, 1, b"\x00\x00\x00\x00"),),
        variant_weights=(1.0,),
    ),
    # Fixed infrastructure: a Wi-Fi printer (WPS) and ESP32 sensors, probing all day at a steady rate.
    DeviceModel(
        key="hp-printer", os="HP FutureSmart", role="infrastructure", randomization="none", oui=b"\x3c\xd9\x2b",
        seq_continue_p=1.0, active_gap_s=90.0, idle_gap_s=90.0, gap_sigma=0.2, per_channel=(1, 1),
        screen=False, directed_p=0.3, wps="HP/LaserJet MFP M428", rates_24=ies.RATES_24_BASIC,
        variants=(ies.ht_caps(0x000C, 0x03, 1),), variant_weights=(1.0,),
    ),
    DeviceModel(
        key="esp32-sensor", os="ESP-IDF 4.4", role="infrastructure", randomization="none", oui=b"\x24\x0a\xc4",
        seq_continue_p=1.0, active_gap_s=30.0, idle_gap_s=30.0, gap_sigma=0.1, per_channel=(1, 1),
        screen=False, directed_p=0.5, rates_24=ies.RATES_24_BASIC,
        burst_channels=tuple(range(1, 14)), burst_span_ms=(60.0, 100.0),
        variants=(ies.ht_caps(0x112C, 0x1B, 1) + ies.ext_caps(b"\x00\x00\x00\x00\x00\x00\x00\x40"),),
        variant_weights=(1.0,),
    ),
)

BY_KEY = {model.key: model for model in MODELS}
RANDOMIZING_PHONES = tuple(m for m in MODELS if m.role == "phone" and m.randomization != "none")
STABLE_PHONES = tuple(m for m in MODELS if m.role == "phone" and m.randomization == "none")
STAFF_DEVICES = tuple(m for m in MODELS if m.role == "staff")
INFRASTRUCTURE = tuple(m for m in MODELS if m.role == "infrastructure")

# Networks phones remember and sometimes probe for by name (directed probes).
SSIDS = (b"HomeNet-5G", b"eduroam", b"CMCC-WEB", b"Starbucks WiFi", b"TP-LINK_8A2C", b"iPhone", b"OfficeWLAN",
         b"ChinaNet-ab12", b"FreeWiFi_Metro", b"Guest")
