"""The AP's brain: tag DB, content queue, check-ins, block transfers and XFC/XTO; no sockets, time is passed in.

Every method takes the loop's monotonic time (``mono``, for scheduling) and the AP's wall clock (``epoch``, for
the record fields); ``step`` runs what is due and says how long until the next event, so one task drives 2,000
tags without a task per tag. Websocket traffic leaves through ``send`` as ready JSON text, the way the AP's
``ws.textAll`` sends it, and is only built while ``listening`` is true.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from simulators.esl.fleet import (
    BATTERY_SENTINELS,
    HW_TYPES,
    LOW_BATTERY_MV,
    WAKEUP_FIRSTBOOT,
    WAKEUP_NETWORK_SCAN,
    WAKEUP_TIMED,
    SimTag,
)
from simulators.esl.jpeg import jpeg_info

DEEP_SLEEP = 3216153600  # the AP's "never" for nextcheckin/nextupdate
BLOCK_BYTES = 4096  # BLOCK_DATA_SIZE
ZERO_HASH = "0" * 32
PAGE_BYTES = 5000  # tagDBtoJson stops adding tags once the document measures more than this
REBOOT_S = 1.0  # a tag that reboots or scans channels checks in again this soon
AP_CHANNEL = 11

APSTATE_OFFLINE, APSTATE_ONLINE, APSTATE_COMING_ONLINE = 0, 1, 6
RUNSTATE_STOP, RUNSTATE_RUN, RUNSTATE_INIT = 0, 2, 3

# Commands that travel to the tag at its next check-in (sendTagCommand); the others act on the AP at once.
TAG_COMMANDS = frozenset({"reboot", "scan", "reset", "deepsleep", "ledflash", "ledflash_long", "ledflash_stop"})
STAT_KEYS = ("uploads_ok", "uploads_409", "uploads_400", "transfers_ok", "transfers_failed", "get_db_pages",
             "led_flashes", "max_concurrent_uploads_seen", "checkins")

_CHECKIN, _BLOCK, _END = 0, 1, 2
_MAC_RE = re.compile(r"[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16}")
_ATOI_RE = re.compile(r"\s*([+-]?\d+)")


def parse_mac(text: str) -> str | None:
    """The AP's hex2mac: 16 hex digits, or 12 padded with two zero bytes in front; None when malformed."""
    if not _MAC_RE.fullmatch(text):
        return None
    return text.upper().rjust(16, "0")


def atoi(text: str) -> int:
    """C ``atoi``/Arduino ``toInt``: the leading integer, 0 when there is none."""
    match = _ATOI_RE.match(text)
    return int(match.group(1)) if match else 0


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class Payload:
    """One queued item: content for the display (json template or JPEG) or a command for the tag."""

    kind: Literal["json", "image", "command"]
    md5: str = ZERO_HASH
    content: list[object] | bytes | None = None
    size: int = 0
    displayable: bool = True
    command: str = ""
    flashes: bool = False


@dataclass(slots=True)
class TagRecord:
    """The AP's tagRecord, fields in ``fillNode`` order, plus the queue the record's ``pending`` counts."""

    mac: str
    hash: str = ZERO_HASH
    lastseen: int = 0
    nextupdate: int = DEEP_SLEEP
    nextcheckin: int = 0
    alias: str = ""
    content_mode: int = 0
    lqi: int = 0
    rssi: int = 0
    temperature: int = 0
    battery_mv: int = 0
    hw_type: int = 0
    wakeup_reason: int = 0
    capabilities: int = 0
    modecfgjson: str = ""
    rotate: int = 0
    lut: int = 0
    invert: int = 0
    updatecount: int = 0
    updatelast: int = 0
    ch: int = AP_CHANNEL
    ver: int = 0
    queue: list[Payload] = field(default_factory=list)
    inflight: Payload | None = None
    current: Payload | None = None  # what the AP last delivered (its /current/<mac>.raw)
    xfer_id: int = 0

    @property
    def pending(self) -> int:
        """Queued items, counting the one being transferred (it stays queued until XFC)."""
        return len(self.queue) + (self.inflight is not None)

    def wire(self) -> dict[str, object]:
        """The record as ``/get_db`` and ws ``tags`` carry it."""
        return {"mac": self.mac, "hash": self.hash, "lastseen": self.lastseen, "nextupdate": self.nextupdate,
                "nextcheckin": self.nextcheckin, "pending": self.pending, "alias": self.alias,
                "contentMode": self.content_mode, "LQI": self.lqi, "RSSI": self.rssi,
                "temperature": self.temperature, "batteryMv": self.battery_mv, "hwType": self.hw_type,
                "wakeupReason": self.wakeup_reason, "capabilities": self.capabilities,
                "modecfgjson": self.modecfgjson, "isexternal": False, "apip": "0.0.0.0", "rotate": self.rotate,
                "lut": self.lut, "invert": self.invert, "updatecount": self.updatecount,
                "updatelast": self.updatelast, "ch": self.ch, "ver": self.ver}


class Engine:
    """Tag DB and radio schedule of one simulated AP."""

    def __init__(self, tags: list[SimTag], *, seed: int, checkin_s: float, transfer_kbps: float, maxsleep_min: int,
                 send: Callable[[str], None], mono: float, epoch: float) -> None:
        if checkin_s <= 0 or transfer_kbps <= 0:
            raise ValueError("checkin_s and transfer_kbps must be positive")
        self.tags = {tag.mac: tag for tag in tags}
        if len(self.tags) != len(tags):
            raise ValueError("duplicate tag MACs")
        self.checkin_s = checkin_s
        self.block_s = BLOCK_BYTES / (transfer_kbps * 1000.0)  # kbps read as kB/s, the README's "about 5 kB/s"
        self.maxsleep_min = maxsleep_min
        self.send = send
        self.listening = False
        self.apstate, self.runstate = APSTATE_ONLINE, RUNSTATE_RUN
        self.boot_mono = mono
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        self.db: dict[str, TagRecord] = {}
        self._rng = random.Random(seed ^ 0x0E5A)
        self._heap: list[tuple[float, int, int, str, int, int]] = []
        self._seq = 0
        self._xfer_seq = 0
        self._after_boot: dict[str, Payload] = {}
        for tag in tags:
            first = self._rng.uniform(0.0, checkin_s)
            rec = self._new_record(tag)
            rec.lastseen = int(epoch + first - checkin_s)
            rec.nextcheckin = int(epoch + first)
            self.db[tag.mac] = rec
            self._schedule_checkin(tag, mono + first)

    # --- scheduling -------------------------------------------------------------------------------------------

    def step(self, mono: float, epoch: float) -> float | None:
        """Run every event due by ``mono``; seconds until the next one (None when nothing is scheduled)."""
        heap = self._heap
        while heap and heap[0][0] <= mono:
            due, _, kind, mac, token, arg = heapq.heappop(heap)
            if kind == _CHECKIN:
                self._checkin(self.tags[mac], due, mono, epoch)
                continue
            rec = self.db.get(mac)
            if rec is None or rec.inflight is None or rec.xfer_id != token:
                continue  # transfer cleared, deleted or cut by a reboot
            if kind == _BLOCK:
                self._block(rec, arg)
            else:
                self._finish(rec, epoch)
        return heap[0][0] - mono if heap else None

    def _push(self, due: float, kind: int, mac: str, token: int = 0, arg: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, mac, token, arg))

    def _schedule_checkin(self, tag: SimTag, due: float) -> None:
        tag.next_due = due  # older heap entries for this tag no longer match and are skipped
        self._push(due, _CHECKIN, tag.mac)

    def wake(self, mac: str, reason: int, mono: float) -> None:
        """A button press: the tag checks in now and reports ``reason``; a deep-sleeping tag wakes too."""
        tag = self.tags[mac]
        tag.wakeup_reason = reason
        tag.asleep = False
        if not tag.silenced:
            self._schedule_checkin(tag, mono)

    # --- the tag's side of a check-in ---------------------------------------------------------------------------

    def _checkin(self, tag: SimTag, due: float, mono: float, epoch: float) -> None:
        if tag.silenced or tag.asleep or due != tag.next_due:
            return
        nxt = due + self.checkin_s
        if self.runstate == RUNSTATE_STOP:  # AP is down: nobody hears the tag, it tries again next interval
            self._schedule_checkin(tag, nxt)
            return
        self.stats["checkins"] += 1
        rng = self._rng
        if tag.battery_mv not in BATTERY_SENTINELS and rng.random() < 0.02:
            tag.battery_mv -= 1
        rec = self.db.get(tag.mac)
        if rec is None:  # deleted with tag_cmd del; the AP (lock=0) takes the tag back as a new record
            rec = self.db[tag.mac] = self._new_record(tag)
        rec.lastseen = int(epoch)
        rec.rssi = tag.rssi + rng.randint(-2, 2)
        rec.lqi = max(0, min(255, tag.lqi + rng.randint(-5, 5)))
        rec.temperature = tag.temperature + (rng.choice((-1, 1)) if rng.random() < 0.05 else 0)
        rec.battery_mv = tag.battery_mv
        rec.wakeup_reason, tag.wakeup_reason = tag.wakeup_reason, WAKEUP_TIMED
        rebooted = rec.wakeup_reason >= 0xE0 and rec.pending == 0
        if rebooted:  # processDataReq forgets what the tag shows, so the content manager sends it again
            rec.hash, rec.nextupdate = ZERO_HASH, 0
        nxt = self._deliver(tag, rec, mono, nxt)
        if not tag.asleep:
            self._schedule_checkin(tag, nxt)
            rec.nextcheckin = int(epoch + nxt - mono)
        self.emit(rec)
        if rebooted and rec.current is not None:
            self.render(rec, rec.current, mono)

    def _deliver(self, tag: SimTag, rec: TagRecord, mono: float, nxt: float) -> float:
        """Hand queued items to the tag at its check-in; returns when it will check in next."""
        if rec.inflight is not None:
            return nxt
        for item in [i for i in rec.queue if i.kind == "command"]:
            rec.queue.remove(item)
            if item.flashes:
                self.stats["led_flashes"] += 1
            if item.command == "deepsleep":
                tag.asleep = True
                rec.nextcheckin = DEEP_SLEEP
                return nxt
            if item.command in ("reboot", "scan"):
                tag.wakeup_reason = WAKEUP_FIRSTBOOT if item.command == "reboot" else WAKEUP_NETWORK_SCAN
                return mono + REBOOT_S
        if not rec.queue:
            return nxt
        item = rec.inflight = rec.queue.pop(0)
        self._xfer_seq += 1
        rec.xfer_id = self._xfer_seq
        blocks = max(1, math.ceil(item.size / BLOCK_BYTES))
        ok = item.displayable and not tag.failing
        shown = sorted({0, blocks // 3, 2 * blocks // 3, blocks - 1}) if ok else [0]  # a few, not every block
        for index in shown:
            self._push(mono + (index + 1) * self.block_s, _BLOCK, rec.mac, rec.xfer_id, index)
        end = mono + blocks * self.block_s
        self._push(end, _END, rec.mac, rec.xfer_id)
        return end + self.checkin_s if end > nxt else nxt

    def _block(self, rec: TagRecord, index: int) -> None:
        if not self.listening or rec.inflight is None:
            return
        blocks = max(1, math.ceil(rec.inflight.size / BLOCK_BYTES))
        length = min(BLOCK_BYTES, rec.inflight.size - index * BLOCK_BYTES)
        checksum = int(rec.inflight.md5[index % 8 * 4:index % 8 * 4 + 4], 16)
        self.send(_dumps({"logMsg": f"{rec.mac} block request /current/{rec.mac}.pending block {index}, "
                                    f"len {length} checksum {checksum}"}))
        self.send(_dumps({"upload": {"src": rec.mac, "current": index + 1, "total": blocks}}))

    def _finish(self, rec: TagRecord, epoch: float) -> None:
        item, rec.inflight = rec.inflight, None
        tag = self.tags[rec.mac]
        assert item is not None
        if tag.failing or tag.silenced or not item.displayable:
            self._send_msg("errMsg", f"< {rec.mac} xfer timeout\r\n")  # the AP's text, CRLF included
            rec.queue.clear()
            self.stats["transfers_failed"] += 1
        else:
            self._send_msg("logMsg", f"{rec.mac} reports xfer complete\r\n")
            tag.displayed = item.content
            rec.current = item
            rec.hash = item.md5[:16] + "0" * 16  # the AP keeps only the 8 bytes of dataVer
            rec.updatecount += 1
            rec.updatelast = int(epoch)
            rec.wakeup_reason = WAKEUP_TIMED
            self.stats["transfers_ok"] += 1
        self.emit(rec)

    # --- the AP's side: content, commands, DB ----------------------------------------------------------------------

    def _new_record(self, tag: SimTag) -> TagRecord:
        hw = HW_TYPES.get(tag.hw_type)
        return TagRecord(mac=tag.mac, lqi=tag.lqi, rssi=tag.rssi, temperature=tag.temperature,
                         battery_mv=tag.battery_mv, hw_type=tag.hw_type, capabilities=hw.capabilities if hw else 0,
                         ver=hw.version if hw else 0)

    def emit(self, rec: TagRecord) -> None:
        """Broadcast the record as ws ``tags`` (wsSendTaginfo)."""
        if self.listening:
            self.send('{"tags":[' + _dumps(rec.wire()) + "]}")

    def _send_msg(self, key: str, text: str) -> None:
        if self.listening:
            self.send(_dumps({key: text}))

    def render(self, rec: TagRecord, item: Payload, mono: float) -> None:
        """The content manager's pass: queue ``item`` unless the tag already shows it (same md5)."""
        self._send_msg("logMsg", f"Updating {rec.mac}")
        rec.nextupdate = DEEP_SLEEP
        if item.md5[:16] == rec.hash[:16]:
            self._send_msg("logMsg", "new image is the same as current image. not updating tag.")
            self.emit(rec)
            return
        millis = int((mono - self.boot_mono) * 1000) % 1_000_000
        self._send_msg("logMsg", f"new image: /current/{rec.mac}_{millis}.pending")
        rec.queue = [queued for queued in rec.queue if queued.kind == "command"]  # a new image replaces a queued one
        rec.queue.append(item)
        self.emit(rec)

    def json_content(self, rec: TagRecord, dst: str, text: str, ttl: int, mono: float) -> None:
        """``/jsonupload`` after the file is written: contentMode 19, then the template is queued."""
        rec.modecfgjson = '{"filename":"/current/' + dst + '.json","interval":"' + str(ttl & 0xFFFFFFFF) + '"}'
        rec.content_mode = 19
        rec.nextupdate = 0
        self.emit(rec)
        try:
            template = json.loads(text)
        except ValueError:
            template = None
        if not isinstance(template, list):
            self._send_msg("errMsg", f"error opening file /current/{dst}.json")
            rec.nextupdate = DEEP_SLEEP
            return
        md5 = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        self.render(rec, Payload("json", md5, template, self._raw_bytes(rec, len(text))), mono)

    def image_content(self, rec: TagRecord, dst: str, data: bytes, fields: dict[str, str], mono: float) -> None:
        """``/imgupload`` after the file is saved: tag settings from the form, then the image is queued.

        A progressive JPEG, or one not at the tag's native size, is queued like any other (the AP cannot tell)
        but the tag never gets a usable frame, so its transfer ends in XTO.
        """
        dither = atoi(fields.get("dither", "1")) & 0xFF
        if "alias" in fields:
            rec.alias = fields["alias"]
        for name in ("rotate", "lut", "invert"):
            if name in fields:
                setattr(rec, name, atoi(fields[name]) & 0xFF)
        ttl = atoi(fields.get("ttl", "0")) & 0xFFFFFFFF
        preload = "preloadtype" in fields
        preload_type = atoi(fields.get("preloadtype", "0")) & 0xFF
        preload_lut = atoi(fields.get("preloadlut", "0")) & 0xFF if preload else 0
        millis = int((mono - self.boot_mono) * 1000)
        rec.modecfgjson = (f'{{"filename":"/temp/{dst}_{millis}.jpg","timetolive":"{ttl}","dither":"{dither}",'
                           f'"delete":"1", "preload":"{int(preload)}", "preload_lut":"{preload_lut}", '
                           f'"preload_type":"{preload_type}"}}')
        rec.content_mode = atoi(fields["contentmode"]) if "contentmode" in fields else 24
        rec.nextupdate = 0
        self.emit(rec)
        info = jpeg_info(data)
        hw = HW_TYPES.get(rec.hw_type)
        fits = info is not None and hw is not None and not info.progressive and (info.width, info.height) == (
            hw.width, hw.height)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.render(rec, Payload("image", md5, data, self._raw_bytes(rec, len(data)), fits), mono)

    @staticmethod
    def _raw_bytes(rec: TagRecord, fallback: int) -> int:
        hw = HW_TYPES.get(rec.hw_type)
        return hw.raw_bytes if hw else fallback

    def command(self, rec: TagRecord, cmd: str, mono: float, epoch: float) -> None:
        """``/tag_cmd``: AP-side commands act now, tag commands wait in the queue for the next check-in."""
        if cmd == "del":
            self._delete(rec)
        elif cmd == "purge":
            now = int(epoch)
            for other in list(self.db.values()):
                if other.nextcheckin == DEEP_SLEEP or other.lastseen < now - 24 * 3600 or now > other.nextcheckin + 600:
                    self._delete(other)
        elif cmd == "clear":
            rec.queue.clear()
            rec.inflight = None
            self.emit(rec)
        elif cmd == "refresh":
            rec.hash, rec.nextupdate = ZERO_HASH, 0
            self.emit(rec)
            if rec.current is not None:
                self.render(rec, rec.current, mono)
        elif cmd in TAG_COMMANDS:
            self.queue_command(rec, Payload("command", command=cmd, flashes=cmd in ("ledflash", "ledflash_long")))

    def queue_command(self, rec: TagRecord, item: Payload) -> None:
        """sendTagCommand: one more pending item, announced at once."""
        rec.queue.append(item)
        self.emit(rec)

    def _delete(self, rec: TagRecord) -> None:
        rec.inflight = None
        del self.db[rec.mac]

    # --- power ---------------------------------------------------------------------------------------------------

    def power_down(self) -> None:
        """The AP restarts: queues live in RAM and are lost; pending json templates are re-rendered after boot."""
        self.apstate, self.runstate = APSTATE_OFFLINE, RUNSTATE_STOP
        for rec in self.db.values():
            templates = [item for item in (rec.inflight, *rec.queue) if item is not None and item.kind == "json"]
            if templates:
                self._after_boot[rec.mac] = templates[-1]
            rec.queue.clear()
            rec.inflight = None

    def power_up(self, mono: float) -> None:
        """Booted and listening again, radio not yet running content: uploads still get 409."""
        self.apstate, self.runstate = APSTATE_COMING_ONLINE, RUNSTATE_INIT
        self.boot_mono = mono

    def online(self, mono: float) -> None:
        """Back in RUN: the content manager redraws the templates that were pending at the reboot."""
        self.apstate, self.runstate = APSTATE_ONLINE, RUNSTATE_RUN
        for mac, item in self._after_boot.items():
            rec = self.db.get(mac)
            if rec is not None:
                self.render(rec, item, mono)
        self._after_boot.clear()

    # --- reads ------------------------------------------------------------------------------------------------------

    def page(self, pos: int) -> str:
        """``/get_db?pos=``: records from ``pos`` until the document measures over 5000 bytes, then ``continu``."""
        parts: list[str] = []
        size = len('{"tags":[]}')
        continu = None
        records = list(self.db.values())
        for index in range(max(0, pos), len(records)):
            text = _dumps(records[index].wire())
            size += len(text.encode()) + (1 if parts else 0)
            parts.append(text)
            if size > PAGE_BYTES:
                continu = index + 1
                break
        tail = f',"continu":{continu}' if continu is not None else ""
        return '{"tags":[' + ",".join(parts) + "]" + tail + "}"

    def one(self, mac: str) -> str:
        """``/get_db?mac=``: that record, or an empty list for a MAC the AP does not know."""
        rec = self.db.get(mac)
        return '{"tags":[' + (_dumps(rec.wire()) if rec else "") + "]}"

    def counts(self, epoch: float) -> tuple[int, int]:
        """(timeoutcount, lowbattcount) by the AP's ``getTagCount`` rules."""
        now = int(epoch)
        maxsleep_s = 5 if self.maxsleep_min == 255 else self.maxsleep_min * 60
        timeouts = low = 0
        for rec in self.db.values():
            behind = rec.nextcheckin < 3600 or now - rec.nextcheckin > 600
            if behind and now - rec.lastseen > maxsleep_s + 300:
                timeouts += 1
            if rec.battery_mv < LOW_BATTERY_MV and rec.battery_mv not in BATTERY_SENTINELS:
                low += 1
        return timeouts, low

    def sys(self, mono: float, epoch: float, *, with_counts: bool) -> str:
        """The ws ``sys`` message."""
        dbsize = sum(160 + len(rec.modecfgjson) for rec in self.db.values())
        sys: dict[str, object] = {
            "currtime": int(epoch), "heap": max(20_000, 190_000 - len(self.db) * 40), "recordcount": len(self.db),
            "dbsize": dbsize, "littlefsfree": 1_200_000, "psfree": 3_900_000, "apstate": self.apstate,
            "runstate": self.runstate, "rssi": -58, "wifistatus": 3, "wifissid": "store-iot",
            "uptime": int(mono - self.boot_mono)}
        if with_counts:
            sys["timeoutcount"], sys["lowbattcount"] = self.counts(epoch)
        return _dumps({"sys": sys})
