"""The simulated shelf labels: OEPL tag types, the radio-side state of each tag, and a seeded fleet of them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# The AP's sentinel battery readings: 0 (never reported) and 1337 (external power). Its low-battery rule skips both.
BATTERY_SENTINELS = (0, 1337)
LOW_BATTERY_MV = 2400

WAKEUP_TIMED = 0
WAKEUP_BUTTON1 = 4
WAKEUP_FIRSTBOOT = 0xFC
WAKEUP_NETWORK_SCAN = 0xFD


@dataclass(frozen=True, slots=True)
class HwType:
    """One entry of the AP's ``tagtypes/XX.json``: what the simulator needs to judge an image and size a transfer."""

    hw_type: int
    name: str
    width: int
    height: int
    bpp: int
    capabilities: int
    version: int

    @property
    def raw_bytes(self) -> int:
        """Size of the raw frame the AP sends the tag; the transfer moves this, not the uploaded JPEG."""
        return self.width * self.height * self.bpp // 8


# Capability bits (oepl-definitions.h): 0x01 LED, 0x02 compression, 0x04 custom LUTs, 0x20 wake button, 0x40 NFC,
# 0x80 NFC wake. Versions are plausible tagSoftwareVersion values, not taken from a particular release.
HW_TYPES: dict[int, HwType] = {
    0x00: HwType(0x00, 'M2 1.54"', 152, 152, 2, 0x02, 0x0026),
    0x01: HwType(0x01, 'M2 2.9"', 296, 128, 2, 0x42, 0x0026),
    0x02: HwType(0x02, 'M2 4.2"', 400, 300, 2, 0x02, 0x0026),
    0x03: HwType(0x03, 'M2 2.2"', 212, 104, 2, 0x02, 0x0026),
    0x33: HwType(0x33, 'M3 2.9"', 384, 168, 2, 0xE7, 0x0019),
}

# hwType shares of a typical grocery fleet: mostly 2.9" price labels, a few small and large ones.
_HW_MIX = ((0x01, 0.60), (0x00, 0.10), (0x03, 0.10), (0x02, 0.08), (0x33, 0.12))


@dataclass(slots=True)
class SimTag:
    """A tag's own (radio-side) state; the AP learns these values only when the tag checks in."""

    mac: str
    hw_type: int
    battery_mv: int
    rssi: int
    lqi: int
    temperature: int
    failing: bool = False
    silenced: bool = False
    asleep: bool = False
    wakeup_reason: int = WAKEUP_TIMED
    displayed: list[object] | bytes | None = None
    next_due: float = field(default=0.0, repr=False)


def _mac(rng: random.Random, hw_type: int) -> str:
    # 8 bytes printed from mac[7] down; OEPL tags read 0000 02.. (M2) or 0000 08.. (M3) that way.
    family = 0x08 if hw_type >= 0x30 else 0x02
    return f"0000{family:02X}{rng.getrandbits(40):010X}"


def make_fleet(n: int, seed: int = 1, failing_share: float = 0.0, low_battery_share: float = 0.02) -> list[SimTag]:
    """``n`` tags, the same for the same arguments; exactly round(n*share) failing and low-battery tags.

    Two tags (in fleets of ten or more) carry the AP's sentinel battery values 0 and 1337, which the AP's
    low-battery count must not include.
    """
    if not 0.0 <= failing_share <= 1.0 or not 0.0 <= low_battery_share <= 1.0:
        raise ValueError("shares must be between 0 and 1")
    rng = random.Random(seed)
    types = rng.choices([t for t, _ in _HW_MIX], weights=[w for _, w in _HW_MIX], k=n)
    macs: list[str] = []
    seen: set[str] = set()
    for hw_type in types:
        mac = _mac(rng, hw_type)
        while mac in seen:
            mac = _mac(rng, hw_type)
        seen.add(mac)
        macs.append(mac)
    order = list(range(n))
    rng.shuffle(order)
    n_low = round(n * low_battery_share)
    low = set(order[:n_low])
    sentinels = dict(zip(order[n_low:n_low + 2], BATTERY_SENTINELS, strict=False)) if n >= 10 else {}
    failing = set(rng.sample(range(n), round(n * failing_share)))
    fleet = []
    for i, (mac, hw_type) in enumerate(zip(macs, types, strict=True)):
        if i in low:
            battery = rng.randint(2150, LOW_BATTERY_MV - 1)
        elif i in sentinels:
            battery = sentinels[i]
        else:
            battery = rng.randint(2600, 3000)
        fleet.append(SimTag(mac=mac, hw_type=hw_type, battery_mv=battery, rssi=rng.randint(-85, -50),
                            lqi=rng.randint(50, 110), temperature=rng.randint(17, 24), failing=i in failing))
    return fleet
