"""The AP's HTTP endpoints (web.cpp ``init_web``): POST parameters from the body only, the firmware's replies.

Like the real AP it takes one upload at a time (OEPL#552): an upload arriving while another is being written to
flash gets 409, so the accepted upload rate tops out at 1/``upload_s``. Where the firmware would leave a request
unanswered (a malformed MAC on ``/jsonupload`` or ``/tag_cmd``) this AP answers 400 instead of hanging the client.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable

from aiohttp import BodyPartReader, web

from simulators.esl.engine import RUNSTATE_RUN, Engine, Payload, TagRecord, atoi, parse_mac

_PATTERN_RE = re.compile(r"[0-9A-Fa-f]{24}")
_AP_CONFIG_FLAGS = ('{"C6": "0", "H2": "0", "TLSR": "0", "savespace": "0", "hasFlasher": "0", "hasBLE": "0", '
                    '"hasSubGhz": "0", ')
_ENV = "ESP32_S3_16_8_YELLOW_AP"
_SYSINFO = {"alias": "StoreEdge sim AP", "env": _ENV, "buildtime": "1786000000", "buildversion": "2.80",
            "sha": "cdd1cfa9", "psramsize": 8386295, "flashsize": 16777216, "rollback": False, "ap_version": 0x001F,
            "hasC6": 0, "hasH2": 0, "hasTslr": 0, "hasFlasher": 0}


class Endpoints:
    """HTTP handlers of one simulated AP, bound to its engine."""

    def __init__(self, engine: Engine, *, upload_s: float, pos_wraps: bool, maxsleep_min: int,
                 epoch: Callable[[], float], set_epoch: Callable[[int], None]) -> None:
        self._engine = engine
        self._epoch = epoch
        self._upload_s = upload_s
        self._pos_wraps = pos_wraps
        self._maxsleep_min = maxsleep_min
        self._set_epoch = set_epoch
        self._busy = False
        self._uploads_active = 0
        self._stall: tuple[int, float] | None = None

    def stall_get_db(self, after_pages: int, stall_s: float) -> None:
        """One-shot: the ``/get_db`` page request number ``after_pages`` (0-based, from now) hangs ``stall_s``."""
        self._stall = (after_pages, stall_s)

    def app(self, ws_handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
        """A fresh application (each power-on gets one), with ``/ws`` served by ``ws_handler``."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/get_db", self._get_db)
        app.router.add_post("/jsonupload", self._jsonupload)
        app.router.add_post("/imgupload", self._imgupload)
        app.router.add_post("/tag_cmd", self._tag_cmd)
        app.router.add_post("/save_cfg", self._save_cfg)
        app.router.add_get("/led_flash", self._led_flash)
        app.router.add_get("/sysinfo", self._sysinfo)
        app.router.add_get("/get_ap_config", self._get_ap_config)
        app.router.add_post("/set_time", self._set_time)
        app.router.add_get("/ws", ws_handler)
        return app

    # --- uploads ------------------------------------------------------------------------------------------------

    def _upload_reply(self, status: int, text: str) -> web.Response:
        key = {200: "uploads_ok", 409: "uploads_409", 400: "uploads_400"}[status]
        self._engine.stats[key] += 1
        return web.Response(status=status, text=text)

    def _upload_arrived(self) -> None:
        self._uploads_active += 1
        stats = self._engine.stats
        stats["max_concurrent_uploads_seen"] = max(stats["max_concurrent_uploads_seen"], self._uploads_active)

    async def _flash_write(self) -> None:
        """Hold the AP busy while the upload is written to LittleFS; the caller has checked ``_busy``."""
        self._busy = True
        try:
            await asyncio.sleep(self._upload_s)
        finally:
            self._busy = False

    async def _jsonupload(self, request: web.Request) -> web.Response:
        self._upload_arrived()
        try:
            form = await request.post()
            engine = self._engine
            if engine.runstate != RUNSTATE_RUN:
                return self._upload_reply(409, "come back later")
            dst, text = form.get("mac"), form.get("json")
            if not isinstance(dst, str) or not isinstance(text, str):
                return self._upload_reply(400, "Missing parameters")
            mac = parse_mac(dst)
            if mac is None:
                return self._upload_reply(400, "mac not found in tagDB")
            if self._busy:
                return self._upload_reply(409, "come back later")
            await self._flash_write()  # the firmware writes /current/<mac>.json before it looks the MAC up
            rec = engine.db.get(mac)
            if rec is None:
                return self._upload_reply(400, "mac not found in tagDB")
            ttl = atoi(str(form.get("ttl", "0")))
            engine.json_content(rec, dst, text, ttl, asyncio.get_running_loop().time())
            return self._upload_reply(200, "Ok, saved")
        finally:
            self._uploads_active -= 1

    async def _imgupload(self, request: web.Request) -> web.Response:
        """Multipart as ESPAsyncWebServer streams it: only the fields *before* the file part are seen."""
        self._upload_arrived()
        try:
            fields: dict[str, str] = {}
            data: bytes | None = None
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, BodyPartReader):
                        continue
                    if part.filename is not None and data is None:
                        data = bytes(await part.read())
                    elif data is None and part.name:
                        fields[part.name] = await part.text()
                    else:
                        await part.release()
            if data is None:  # no file part: the upload callback never runs and the AP answers an empty 200
                return web.Response(status=200)
            engine = self._engine
            if engine.runstate != RUNSTATE_RUN:
                return self._upload_reply(409, "Come back later")
            if "mac" not in fields:
                return self._upload_reply(400, "parameters incomplete")
            if self._busy:
                return self._upload_reply(409, "Come back later")
            await self._flash_write()
            mac = parse_mac(fields["mac"])
            if mac is None:  # saved, then hex2mac fails: the firmware falls through to its empty 200
                return web.Response(status=200)
            rec = engine.db.get(mac)
            if rec is None:
                return self._upload_reply(400, "mac not found")
            engine.image_content(rec, fields["mac"], data, fields, asyncio.get_running_loop().time())
            return self._upload_reply(200, "Ok, saved")
        finally:
            self._uploads_active -= 1

    # --- tag settings and commands ----------------------------------------------------------------------------------

    async def _form_record(self, request: web.Request) -> tuple[TagRecord | None, dict[str, str]]:
        form = await request.post()
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        mac = parse_mac(values.get("mac", ""))
        return (self._engine.db.get(mac) if mac else None), values

    async def _tag_cmd(self, request: web.Request) -> web.Response:
        rec, form = await self._form_record(request)
        if "mac" not in form or "cmd" not in form:
            return web.Response(status=500, text="param error")
        if rec is None:
            return web.Response(status=400, text="Error: mac not found")
        loop = asyncio.get_running_loop()
        self._engine.command(rec, form["cmd"], loop.time(), self._epoch())
        return web.Response(text="Ok, done")

    async def _save_cfg(self, request: web.Request) -> web.Response:
        rec, form = await self._form_record(request)
        if rec is None and parse_mac(form.get("mac", "")) is not None:
            return web.Response(text="Error while saving: mac not found")  # still a 200, as on the AP
        if rec is not None:
            rec.content_mode = atoi(form.get("contentmode", str(rec.content_mode)))
            rec.alias = form.get("alias", rec.alias)
            rec.modecfgjson = form.get("modecfgjson", rec.modecfgjson)
            rec.nextupdate = 0
            for name in ("rotate", "lut", "invert"):
                if name in form:
                    setattr(rec, name, atoi(form[name]) & 0xFF)
            self._engine.emit(rec)
        return web.Response(text="Ok, saved")

    async def _led_flash(self, request: web.Request) -> web.Response:
        mac = parse_mac(request.query.get("mac", ""))
        rec = self._engine.db.get(mac) if mac else None
        if rec is None:
            return web.Response(status=400, text="parameters are missing")
        payload = bytes(12)
        pattern = request.query.get("pattern")
        if pattern is not None:
            if not _PATTERN_RE.match(pattern):
                return web.Response(status=400, text="Error: expects 12 hex bytes in pattern")
            payload = bytes.fromhex(pattern[:24])
        # ledFlash.mode is the low nibble of the first byte; mode 0 switches the LED off
        self._engine.queue_command(rec, Payload("command", command="led_flash", flashes=payload[0] & 0x0F != 0))
        return web.Response(text="ok, request transmitted")

    # --- reads and AP settings ------------------------------------------------------------------------------------

    async def _get_db(self, request: web.Request) -> web.Response:
        engine = self._engine
        query = request.query
        if "mac" in query:
            mac = parse_mac(query["mac"])
            body = engine.one(mac) if mac else '{"error": "malformatted parameter"}'
            return web.Response(text=body, content_type="application/json")
        if self._stall is not None:
            remaining, stall_s = self._stall
            self._stall = (remaining - 1, stall_s) if remaining > 0 else None
            if remaining == 0:
                await asyncio.sleep(stall_s)
        pos = atoi(query.get("pos", "0"))
        engine.stats["get_db_pages"] += 1
        body = engine.page(pos & 0xFF if self._pos_wraps else pos)
        return web.Response(text=body, content_type="application/json")

    async def _sysinfo(self, _request: web.Request) -> web.Response:
        return web.json_response(_SYSINFO)

    async def _get_ap_config(self, _request: web.Request) -> web.Response:
        """The firmware prints its flags, then splices in apconfig.json (pretty-printed) after its opening brace."""
        config = {"channel": 11, "subghzchannel": 0, "alias": _SYSINFO["alias"], "led": 255, "tft": 255,
                  "language": 0, "maxsleep": self._maxsleep_min, "stopsleep": 1, "preview": 1, "nightlyreboot": 0,
                  "lock": 0, "wifipower": 34, "timezone": "CET-1CEST,M3.5.0,M10.5.0/3", "sleeptime1": 0,
                  "sleeptime2": 0, "ble": 0, "repo": "OpenEPaperLink/OpenEPaperLink", "env": _ENV, "discovery": 0,
                  "showtimestamp": 0}
        head = _AP_CONFIG_FLAGS + f'"apstate": "{self._engine.apstate}", '
        return web.Response(text=head + json.dumps(config, indent=2)[1:], content_type="application/json")

    async def _set_time(self, request: web.Request) -> web.Response:
        form = await request.post()
        epoch = form.get("epoch")
        if not isinstance(epoch, str):
            return web.Response(status=400, text="missing 'epoch'")
        value = atoi(epoch)
        if value <= 1_600_000_000:
            return web.Response(status=400, text="invalid epoch")
        self._set_epoch(value)
        return web.Response(text="ok")
