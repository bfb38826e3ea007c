"""The OpenEPaperLink access point's protocol, as data: tag records, websocket messages, /get_db pages, the AP's
health rules, and how one label update moves from sent to confirmed or failed.

Pure: no sockets, no clock (callers pass ``now``). Field names and rules follow the AP firmware (``tag_db.cpp``,
``web.cpp``, ``newproto.cpp``; see ``shared/research/esl_barcode.md`` §1).
"""

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

# A tag record's nextcheckin when the tag is in deep sleep; batteryMv values that mean "no reading".
DEEP_SLEEP_CHECKIN: Final = 3216153600
BATTERY_SENTINELS: Final = frozenset({0, 1337})
AP_STATES: Final = {0: "offline", 1: "online", 2: "flashing", 3: "wait_reset", 4: "power_cycle_required",
                    5: "failed", 6: "coming_online", 7: "no_radio"}
RUN_STATES: Final = {0: "stop", 1: "pause", 2: "run", 3: "init"}
WAKEUP_REASONS: Final = {0: "timed", 1: "boot", 2: "gpio", 3: "nfc", 4: "button1", 5: "button2", 6: "button3",
                         0x0F: "rf", 0xE0: "failed_ota_fw", 0xFC: "first_boot", 0xFD: "network_scan",
                         0xFE: "watchdog_reset"}

_MAC16 = re.compile(r"^[0-9A-F]{16}$")
_MAC12 = re.compile(r"^[0-9A-F]{12}$")
_XFER_COMPLETE = re.compile(r"([0-9A-Fa-f]{16}) reports xfer complete")
_XFER_TIMEOUT = re.compile(r"([0-9A-Fa-f]{16}) xfer timeout")


def normalize_mac(text: str) -> str | None:
    """A label id as the AP prints it (16 upper-case hex digits), from 16 or 12 hex digits with or without
    separators (12 are padded with ``0000`` in front, as the AP does); None when it is not a label id."""
    bare = re.sub(r"[:\-\s]", "", text.strip()).upper()
    if _MAC16.match(bare):
        return bare
    if _MAC12.match(bare):
        return "0000" + bare
    return None


@dataclass(slots=True)
class TagRecord:
    """The fields of one AP tag record the gateway uses (the AP sends about 25)."""

    mac: str
    hw_type: int
    battery_mv: int | None
    rssi: int | None
    lqi: int | None
    temperature: int | None
    lastseen: float | None
    nextcheckin: float | None
    pending: int
    wakeup_reason: int | None
    capabilities: int | None
    updatecount: int | None
    updatelast: float | None
    hash: str | None
    version: int | None
    channel: int | None


def _int(record: dict[str, Any], key: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"tag field {key!r} is not a number: {value!r}")
    return int(value)


def parse_tag(record: object) -> TagRecord:
    """One tag record from ``/get_db`` or a websocket ``tags`` message; ``ValueError`` names what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("tag record is not an object")
    mac = normalize_mac(str(record.get("mac", "")))
    if mac is None:
        raise ValueError(f"tag record has no valid mac: {record.get('mac')!r}")
    hw_type = _int(record, "hwType")
    if hw_type is None:
        raise ValueError(f"tag {mac} has no hwType")
    lastseen, nextcheckin, updatelast = (_int(record, k) for k in ("lastseen", "nextcheckin", "updatelast"))
    digest = record.get("hash")
    return TagRecord(
        mac=mac, hw_type=hw_type, battery_mv=_int(record, "batteryMv"), rssi=_int(record, "RSSI"),
        lqi=_int(record, "LQI"), temperature=_int(record, "temperature"),
        lastseen=float(lastseen) if lastseen else None, nextcheckin=float(nextcheckin) if nextcheckin else None,
        pending=_int(record, "pending") or 0, wakeup_reason=_int(record, "wakeupReason"),
        capabilities=_int(record, "capabilities"), updatecount=_int(record, "updatecount"),
        updatelast=float(updatelast) if updatelast else None, hash=digest if isinstance(digest, str) else None,
        version=_int(record, "ver"), channel=_int(record, "ch"),
    )


def parse_db_page(text: str) -> tuple[list[TagRecord], int | None, int]:
    """One ``/get_db`` page: its valid records, the ``continu`` index of the next page (None on the last page),
    and how many records were malformed (skipped, counted by the caller). ``ValueError`` when the page itself is
    not a tag list (an AP error, a truncated body)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"/get_db page is not JSON: {err}") from err
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise ValueError(f"/get_db page has no tag list: {str(body)[:80]}")
    records, bad = [], 0
    for raw in body["tags"]:
        try:
            records.append(parse_tag(raw))
        except ValueError:
            bad += 1
    following = body.get("continu")
    return records, (int(following) if isinstance(following, int) and following > 0 else None), bad


def is_low_battery(battery_mv: int | None, threshold_mv: int) -> bool:
    """The AP's rule: below the threshold and not one of its no-reading sentinels (0, 1337)."""
    return battery_mv is not None and battery_mv not in BATTERY_SENTINELS and battery_mv < threshold_mv


def is_timed_out(record: TagRecord, now: float, maxsleep_min: int, grace_s: float) -> bool:
    """The AP's rule (``getTagCount``): more than ``grace_s`` past its expected check-in (or none known) AND not
    heard for longer than the longest sleep the AP allows plus five minutes. Deep sleep is not a time-out."""
    if record.nextcheckin == DEEP_SLEEP_CHECKIN:
        return False
    overdue = record.nextcheckin is None or now > record.nextcheckin + grace_s
    silent = record.lastseen is None or now - record.lastseen > maxsleep_min * 60 + 300
    return overdue and silent


def worth_history(previous: TagRecord | None, record: TagRecord) -> bool:
    """Whether a check-in changed something a technician follows (the caller adds an hourly row regardless)."""
    if previous is None:
        return True
    battery_moved = (previous.battery_mv is None) != (record.battery_mv is None) or (
        previous.battery_mv is not None and record.battery_mv is not None
        and abs(previous.battery_mv - record.battery_mv) >= 50
    )
    return (battery_moved or previous.pending != record.pending or previous.updatecount != record.updatecount
            or (record.wakeup_reason or 0) != 0)


# -- websocket messages ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class SysStatus:
    """``{"sys": ...}``: the AP's own state."""

    ap_state: str
    run_state: str
    low_battery: int | None
    timed_out: int | None


@dataclass(slots=True)
class TagsUpdate:
    """``{"tags": [...]}``: a label checked in, finished or failed a transfer, or its queue changed."""

    records: list[TagRecord]
    malformed: int


@dataclass(slots=True)
class Transfer:
    """A ``logMsg`` "reports xfer complete" or an ``errMsg`` "xfer timeout" about one label."""

    mac: str
    ok: bool


@dataclass(slots=True)
class Rebooting:
    """``{"errMsg": "REBOOTING"}``: the AP restarts and drops the websocket."""


@dataclass(slots=True)
class Ignored:
    """Anything else (progress, console, other APs): nothing for the gateway to do."""

    key: str


WsMessage = SysStatus | TagsUpdate | Transfer | Rebooting | Ignored


def parse_ws(text: str) -> WsMessage:
    """Classify one websocket text message; ``ValueError`` for one that is not a JSON object."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"websocket message is not JSON: {err}") from err
    if not isinstance(body, dict) or not body:
        raise ValueError("websocket message is not a JSON object")
    if isinstance(body.get("sys"), dict):
        sys = body["sys"]
        return SysStatus(
            ap_state=AP_STATES.get(int(sys.get("apstate", -1)), "unknown"),
            run_state=RUN_STATES.get(int(sys.get("runstate", -1)), "unknown"),
            low_battery=_int(sys, "lowbattcount"), timed_out=_int(sys, "timeoutcount"),
        )
    if isinstance(body.get("tags"), list):
        records, bad = [], 0
        for raw in body["tags"]:
            try:
                records.append(parse_tag(raw))
            except ValueError:
                bad += 1
        return TagsUpdate(records, bad)
    for key, pattern, ok in (("logMsg", _XFER_COMPLETE, True), ("errMsg", _XFER_TIMEOUT, False)):
        message = body.get(key)
        if isinstance(message, str):
            if not ok and message.strip() == "REBOOTING":
                return Rebooting()
            found = pattern.search(message)
            if found:
                return Transfer(found.group(1).upper(), ok)
    return Ignored(next(iter(body)))


# -- one label update ------------------------------------------------------------------------------------------

UpdateState = Literal["queued", "sent", "pending", "confirmed", "failed"]
OPEN_STATES: Final = ("queued", "sent", "pending")


@dataclass(slots=True)
class LabelUpdate:
    """One label's part of a price update, as it moves queued → sent → pending → confirmed | failed."""

    id: int
    label: str
    gtin: str
    command_id: str | None
    due_at: float
    state: UpdateState = "queued"
    reason: str | None = None
    attempts: int = 0
    transfers: int = 0
    content_hash: str | None = None
    sent_at: float | None = None
    updatecount_before: int | None = None


Verdict = Literal["confirmed", "pending", "transfer_failed"]


def judge(update: LabelUpdate, record: TagRecord) -> Verdict | None:
    """What a fresh tag record says about an update the AP has accepted (state sent or pending).

    Confirmed when the label's update count moved past the count before the upload (the AP bumps it on the
    tag's transfer-complete); pending once the AP shows queued content for it; a pending update whose queue
    emptied without a bump ended in a transfer failure (the AP clears the queue on a time-out).
    """
    if update.state not in ("sent", "pending"):
        return None
    before = update.updatecount_before
    if record.updatecount is not None and before is not None and record.updatecount > before:
        return "confirmed"
    if record.pending > 0:
        return "pending" if update.state == "sent" else None
    if update.state == "pending":
        return "transfer_failed"
    return None
