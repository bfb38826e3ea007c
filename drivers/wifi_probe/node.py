"""Pure parsing of sniffer-node reports: one JSON line per probe request from an ESP32-style node, in; a typed
tuple out. Invalid lines are counted as malformed in the shared ``ParseStats`` and skipped, never raised."""

import json
import re
from typing import Final, NamedTuple

from drivers.wifi_probe.protocol import ParseStats


class NodeReport(NamedTuple):
    """One probe request reported by a sniffer node; ``mac`` is raw like ``ProbeFrame.mac`` (hash it at once)."""

    mac: bytes  # 6 bytes
    randomized: bool  # locally-administered bit of the first octet
    rssi: int  # dBm
    channel: int
    seq: int  # 12-bit sequence number
    ts: float | None  # the node's clock, epoch seconds; None when the node sends none (use the arrival time)
    fp: str | None  # the node's own IE fingerprint as 16 lowercase hex digits (its own hash, not ``ProbeFrame``'s)
    ssid_len: int  # 0 when the node does not say
    node: str | None  # the node's name; None when it sends none (one node per serial port)


MAX_NODE_LINE: Final = 1024  # bytes; a real report is about 130, so anything longer is garbage or a runaway line
_MAC_TEXT: Final = re.compile(r"[0-9A-Fa-f]{2}(?P<sep>[:-]?)[0-9A-Fa-f]{2}(?:(?P=sep)[0-9A-Fa-f]{2}){4}")
_FP_TEXT: Final = re.compile(r"[0-9A-Fa-f]{1,16}")
_MAX_NODE_NAME: Final = 64


def _int_in(value: object, low: int, high: int) -> int | None:
    """``value`` if it is a JSON integer within [low, high], else ``None``."""
    if type(value) is int and low <= value <= high:
        return value
    return None


def parse_node_line(line: bytes, stats: ParseStats) -> NodeReport | None:
    """Parse one JSON line from a sniffer node; ``None`` (counted as malformed) for anything invalid.

    ``{"mac": "aa:bb:cc:dd:ee:ff", "rssi": -61, "ch": 6, "seq": 1234, "ts": 1795450000.123, "fp": "9f3a...",
    "ssid_len": 0, "node": "sn-1"}``: ``mac`` (colon, dash or no separator), ``rssi`` (dBm, -128..0), ``ch``
    (1..233) and ``seq`` (0..4095) are required; ``ts`` (epoch seconds), ``fp`` (1 to 16 hex digits),
    ``ssid_len`` (0..32) and ``node`` (a name up to 64 characters) may be missing or null. Unknown keys are
    ignored so nodes can add fields.
    """
    stats.frames += 1
    if len(line) > MAX_NODE_LINE:
        stats.malformed += 1
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        stats.malformed += 1
        return None
    report = _node_report(obj) if type(obj) is dict else None
    if report is None:
        stats.malformed += 1
        return None
    stats.probes += 1
    return report


def _node_report(obj: dict[str, object]) -> NodeReport | None:
    mac_text = obj.get("mac")
    if type(mac_text) is not str or not (match := _MAC_TEXT.fullmatch(mac_text)):
        return None
    mac = bytes.fromhex(mac_text.replace(match["sep"], "") if match["sep"] else mac_text)
    rssi = _int_in(obj.get("rssi"), -128, 0)
    channel = _int_in(obj.get("ch"), 1, 233)
    seq = _int_in(obj.get("seq"), 0, 4095)
    ssid_len = _int_in(0 if obj.get("ssid_len") is None else obj["ssid_len"], 0, 32)
    if rssi is None or channel is None or seq is None or ssid_len is None:
        return None
    raw_ts = obj.get("ts")
    ts: float | None = None
    if raw_ts is not None:
        if isinstance(raw_ts, bool) or not isinstance(raw_ts, int | float) or not 0 <= raw_ts < 1e11:
            return None  # 1e11 s is the year 5138: more is a clock in ms or garbage; NaN fails the comparison too
        ts = float(raw_ts)
    fp = obj.get("fp")
    if fp is not None and (type(fp) is not str or not _FP_TEXT.fullmatch(fp)):
        return None
    node = obj.get("node")
    if node is not None and (type(node) is not str or not 0 < len(node) <= _MAX_NODE_NAME or not node.isprintable()):
        return None
    return NodeReport(
        mac, mac[0] & 0x02 != 0, rssi, channel, seq, ts, None if fp is None else fp.lower().zfill(16), ssid_len, node
    )
