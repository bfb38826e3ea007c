"""OpenEPaperLink access-point driver: label state from the websocket and /get_db, price updates from HQ through a
single-flight upload queue, confirmation by the labels' own check-ins, pairing by scan, requests from the CLI.

Everything runs on one asyncio loop in the driver's thread, so the label table and the update queue have one
owner; HQ commands (MQTT thread) only write to the store and hand the new updates to the loop. State lives in
SQLite (the daemon's writer): a restart resumes every open update. Timing follows the AP: an update is *sent*
when the AP accepted the upload, *pending* once the AP shows it queued for the label, *confirmed* when the label's
update count moves (its transfer completed), and *failed* with a reason otherwise.
"""

import asyncio
import contextlib
import functools
import heapq
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from drivers.esl import store
from drivers.esl.apclient import ApBusy, ApClient, ApError, ApRejected, ApTimeout, ApUnreachable
from drivers.esl.config import EslConfig
from drivers.esl.content import ContentError, PriceItem, TagType, Template, content_hash, json_payload, render_json
from drivers.esl.protocol import (
    LabelUpdate,
    Rebooting,
    SysStatus,
    TagRecord,
    TagsUpdate,
    Transfer,
    is_low_battery,
    is_timed_out,
    judge,
    normalize_mac,
    parse_ws,
    worth_history,
)
from drivers.esl.requests import UPDATE_COMMAND, parse_update_args
from edge import const
from edge.const import HEALTH_DEGRADED, HEALTH_OK, HEALTH_UNAVAILABLE
from edge.driver import Driver, DriverContext
from edge.errors import CommandError, CommandRejected

logger = logging.getLogger(__name__)

TICK_S = 0.5
LED_SELECT = "ledflash"
LED_BOUND = "ledflash_long"


class EslDriver(Driver):
    """One OpenEPaperLink-compatible access point."""

    type_key = "esl"

    def __init__(self, config: EslConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.cfg = config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._labels: dict[str, TagRecord] = {}
        self._missing: set[str] = set()
        self._history_at: dict[str, float] = {}
        self._dirty: dict[str, TagRecord] = {}
        self._history: list[TagRecord] = []
        self._open: dict[str, LabelUpdate] = {}  # label → its one open update
        self._due: list[tuple[float, int, str]] = []  # heap of (due_at, update id, label) for queued updates
        self._items: dict[str, PriceItem] = {}
        self._shown: dict[str, str] = {}
        self._changed: dict[int, tuple[LabelUpdate, float | None]] = {}
        self._tag_types: dict[int, TagType] = {}
        self._templates: dict[tuple[int, int], Template] = {}
        self._content_error: str | None = None
        self._work: asyncio.Event | None = None
        self._reconcile_now: asyncio.Event | None = None
        self._db_complete = False
        self._ws_up = False
        self._ap_state = "unknown"
        self._ap_error: str | None = None
        self._maxsleep_min = config.maxsleep_min
        self._last_upload_start = 0.0
        self._inflight: str | None = None
        self._fresh: dict[str, float] = {}  # label → when the websocket or an upload last told us about it
        self._inflight_failed = False
        self._busy_wait = config.busy_backoff_s
        self._pairing: tuple[str, float] | None = None
        self._last_scan_id: int | None = None
        self._window_end = 0.0
        self._client: ApClient | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the driver's event loop thread."""
        if self._thread is not None:
            return
        if self.ctx.store is None:
            raise RuntimeError("the ESL driver needs the store writer in its context")
        self.ctx.monitor.details.update(self.describe())
        self._thread = threading.Thread(target=self._run, name=f"driver-{self.config.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, persist what changed, release the HTTP session."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10.0)
        if thread.is_alive():
            logger.error("ESL driver %s did not stop within 10 s", self.config.name)
        self._thread = None

    def describe(self) -> dict[str, str]:
        """The AP's URL and how content is sent."""
        return {"url": self.cfg.base_url, "content": self.cfg.content}

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            logger.exception("ESL driver %s failed", self.config.name)
            self.ctx.monitor.set_state(HEALTH_UNAVAILABLE, "driver error (see log)")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping, self._work, self._reconcile_now = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._load_content()
        await self._warm_start()
        async with aiohttp.ClientSession() as session:
            self._client = ApClient(session, self.cfg.base_url, self.cfg.http_timeout_s)
            tasks = [asyncio.create_task(job) for job in (
                self._websocket(session), self._reconciler(), self._uploader(), self._ticker())]
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flush()

    def _load_content(self) -> None:
        from drivers.esl.content import load_tag_types, load_templates

        try:
            self._tag_types = load_tag_types(self.cfg.content_dir / "tagtypes")
            self._templates = load_templates(self.cfg.content_dir / "templates")
        except ContentError as err:
            self._content_error = str(err)
            logger.error("ESL %s: label content unavailable: %s", self.config.name, err)

    async def _store(self, task: Callable[[Any], Any]) -> Any:
        assert self.ctx.store is not None
        return await asyncio.wrap_future(self.ctx.store.post(task))

    async def _warm_start(self) -> None:
        ap = self.config.name

        def load(conn: Any) -> tuple[list[TagRecord], set[str], list[LabelUpdate], dict[str, str], dict[str, str]]:
            updates = store.open_updates(conn)
            return (store.load_labels(conn, ap), store.missing_labels(conn, ap), updates, store.shown_content(conn),
                    store.items(conn, (u.gtin for u in updates)))

        labels, missing, updates, shown, items = await self._store(load)
        self._labels = {record.mac: record for record in labels}
        self._missing, self._shown = missing, shown
        self._items = {gtin: PriceItem.model_validate_json(text) for gtin, text in items.items()}
        self._enqueue(updates)
        if updates:
            logger.info("ESL %s resumes %d open label update(s)", self.config.name, len(updates))

    # -- websocket: live tag and system messages ----------------------------------------------------------------

    async def _websocket(self, session: aiohttp.ClientSession) -> None:
        url = self.cfg.base_url.replace("http", "ws", 1) + "/ws"
        wait = 0.5
        while True:
            rebooting = False
            try:
                timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.cfg.http_timeout_s)
                async with session.ws_connect(url, heartbeat=30.0, timeout=timeout) as ws:
                    self._ws_up, wait, self._ap_error = True, 0.5, None
                    self._request_reconcile()  # whatever happened while we were away
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        rebooting = self._on_ws(message.data) or rebooting
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                self._ap_error = f"websocket: {type(err).__name__}: {err}".rstrip(": ")
            self._ws_up = False
            self.ctx.count("ws_disconnects")
            if rebooting:
                self._ap_state = "rebooting"
                wait = max(wait, 2.0)
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.cfg.reconnect_max_s)

    def _on_ws(self, text: str) -> bool:
        """Handle one message; True when the AP announced a reboot."""
        try:
            message = parse_ws(text)
        except ValueError:
            self.ctx.count("ws_malformed")
            return False
        now = time.time()
        if isinstance(message, TagsUpdate):
            for record in message.records:
                self._fresh[record.mac] = time.monotonic()
                self._on_record(record, now)
            if message.malformed:
                self.ctx.count("tag_records_malformed", message.malformed)
        elif isinstance(message, SysStatus):
            running = message.run_state == "run"
            self._ap_state = message.ap_state if running else f"{message.ap_state}/{message.run_state}"
        elif isinstance(message, Transfer) and not message.ok:
            self._inflight_failed = self._inflight_failed or message.mac == self._inflight
            update = self._open.get(message.mac)
            if update is not None and update.state in ("sent", "pending"):
                self._transfer_failed(update, now)
        elif isinstance(message, Rebooting):
            self._ap_state = "rebooting"
            logger.warning("ESL access point %s is rebooting", self.config.name)
            return True
        return False

    # -- reconciliation: the whole tag DB -----------------------------------------------------------------------

    def _request_reconcile(self) -> None:
        assert self._reconcile_now is not None
        self._reconcile_now.set()

    async def _reconciler(self) -> None:
        assert self._reconcile_now is not None and self._client is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconcile_now.wait(), timeout=self.cfg.reconcile_s)
            self._reconcile_now.clear()
            await self._reconcile(self._client)

    async def _reconcile(self, client: ApClient) -> None:
        try:
            maxsleep = (await client.get_json("/get_ap_config")).get("maxsleep")
            if isinstance(maxsleep, int):
                self._maxsleep_min = maxsleep
        except ApError:
            pass
        started = time.monotonic()
        fetch = await client.fetch_db(self.cfg.get_db_retries)
        now = time.time()
        for record in fetch.records:
            # A page is a snapshot from before the fetch ended: a label heard on the websocket (or uploaded to)
            # since the fetch began is fresher than it, so its page record is not applied.
            if self._fresh.get(record.mac, 0.0) < started:
                self._on_record(record, now)
        self.ctx.count("get_db_pages", fetch.pages)
        if fetch.malformed:
            self.ctx.count("tag_records_malformed", fetch.malformed)
        if not fetch.complete:
            # Never read a failed or partial fetch as deletions: the labels not in it are simply not refreshed.
            self.ctx.count("get_db_partial")
            self._ap_error = f"/get_db incomplete after {fetch.pages} page(s): {fetch.error}"
            logger.warning("ESL %s: %s; labels kept", self.config.name, self._ap_error)
            return
        self._db_complete, self._ap_error = True, None
        present = {record.mac for record in fetch.records}
        self._missing = set(self._labels) - present
        ap = self.config.name
        self._flush()
        gone = await self._store(lambda conn: store.mark_missing(conn, ap, present, now))
        if gone:
            logger.warning("ESL %s: %d label(s) no longer listed by the AP (kept, marked missing)", ap, gone)
        assert self._work is not None
        self._work.set()

    # -- label records and update outcomes ----------------------------------------------------------------------

    def _on_record(self, record: TagRecord, now: float) -> None:
        previous = self._labels.get(record.mac)
        self._labels[record.mac] = record
        self._missing.discard(record.mac)
        self._dirty[record.mac] = record
        if worth_history(previous, record) or now - self._history_at.get(record.mac, 0.0) >= self.cfg.history_every_s:
            self._history.append(record)
            self._history_at[record.mac] = now
        self.ctx.monitor.event(now)
        update = self._open.get(record.mac)
        if update is not None:
            self._apply(update, record, now)

    def _apply(self, update: LabelUpdate, record: TagRecord, now: float) -> None:
        verdict = judge(update, record)
        if verdict == "confirmed":
            update.state, update.reason = "confirmed", None
            if update.content_hash is not None:
                self._shown[update.label] = update.content_hash
            self._finish(update, now)
        elif verdict == "pending":
            update.state = "pending"
            self._changed[update.id] = (update, None)
        elif verdict == "transfer_failed":
            self._transfer_failed(update, now)

    def _transfer_failed(self, update: LabelUpdate, now: float) -> None:
        update.transfers += 1
        self.ctx.count("transfers_failed")
        if update.transfers < self.cfg.transfer_attempts:
            update.state = "queued"
            self._schedule(update, now)
            self._changed[update.id] = (update, None)
            return
        label = self._labels.get(update.label)
        detail = f" (RSSI {label.rssi} dBm, battery {label.battery_mv} mV)" if label is not None else ""
        self._fail(update, f"transfer timed out {update.transfers} time(s){detail}", now)

    def _fail(self, update: LabelUpdate, reason: str, now: float) -> None:
        update.state, update.reason = "failed", reason
        self._finish(update, now)

    def _finish(self, update: LabelUpdate, now: float) -> None:
        self.ctx.count(f"updates_{update.state}")
        self._changed[update.id] = (update, now)
        if self._open.get(update.label) is update:
            del self._open[update.label]

    # -- the upload queue (one in flight) ----------------------------------------------------------------------

    def _enqueue(self, updates: list[LabelUpdate]) -> None:
        now = time.time()
        for update in updates:
            older = self._open.get(update.label)
            if older is not None and older.id < update.id:
                del self._open[older.label]  # the store marked it superseded when this one was created
            self._open[update.label] = update
            if update.state == "queued":
                self._schedule(update, now)
        if self._work is not None:
            self._work.set()

    def _schedule(self, update: LabelUpdate, at: float) -> None:
        heapq.heappush(self._due, (max(at, update.due_at), update.id, update.label))
        if self._work is not None:
            self._work.set()

    def _next_due(self, now: float) -> tuple[LabelUpdate | None, float | None]:
        """The next queued update that is due, or (None, when the next one will be)."""
        while self._due:
            due_at, update_id, label = self._due[0]
            update = self._open.get(label)
            if update is None or update.id != update_id or update.state != "queued":
                heapq.heappop(self._due)  # superseded, finished or already re-queued
                continue
            if due_at > now:
                return None, due_at
            heapq.heappop(self._due)
            return update, None
        return None, None

    async def _uploader(self) -> None:
        assert self._work is not None and self._client is not None
        while True:
            now = time.time()
            update, next_at = self._next_due(now) if self._db_complete else (None, None)
            if update is None:
                self._work.clear()
                timeout = 1.0 if next_at is None else min(1.0, max(0.0, next_at - now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._work.wait(), timeout=timeout)
                continue
            gap = self._last_upload_start + self.cfg.min_upload_interval_s - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            await self._upload(self._client, update)

    def _content(self, update: LabelUpdate) -> tuple[bytes, str]:
        """The bytes to upload for an update and their hash; ``ContentError`` says why there are none."""
        if self._content_error is not None:
            raise ContentError(self._content_error)
        label = self._labels.get(update.label)
        if label is None:
            raise ContentError("label not known to the access point")
        item = self._items.get(update.gtin)
        if item is None:
            raise ContentError(f"no price received for GTIN {update.gtin}")
        tag_type = self._tag_types.get(label.hw_type)
        if tag_type is None:
            raise ContentError(f"unknown tag type hwType 0x{label.hw_type:02X}")
        elements = render_json(item, tag_type, self._templates)
        if self.cfg.content == "image":
            from drivers.esl.image import render_jpeg

            payload = render_jpeg(elements, tag_type)
        else:
            payload = json_payload(elements)
        return payload, content_hash(payload)

    async def _upload(self, client: ApClient, update: LabelUpdate) -> None:
        now = time.time()
        try:
            payload, digest = self._content(update)
        except ContentError as err:
            self._fail(update, str(err), now)
            return
        label = self._labels[update.label]
        if self._shown.get(update.label) == digest and label.pending == 0:
            update.content_hash, update.state, update.reason = digest, "confirmed", "already shown"
            self._finish(update, now)
            return
        self._last_upload_start = time.monotonic()
        # The label may check in and finish (or fail) the transfer before the AP's answer reaches us: take the
        # update count now and watch for a transfer failure of this label while the upload is in flight.
        before = label.updatecount or 0
        self._inflight, self._inflight_failed = update.label, False
        self._fresh[update.label] = time.monotonic()
        try:
            if self.cfg.content == "image":
                await client.image_upload(update.label, payload)
            else:
                await client.json_upload(update.label, payload)
        except ApUnreachable as err:
            # The AP is offline or rebooting: nothing is charged to the update; it waits for the AP.
            self._ap_error = str(err)
            self.ctx.count("uploads_unreachable")
            self._schedule(update, time.time() + self._busy_wait)
            self._busy_wait = min(self._busy_wait * 2, self.cfg.busy_backoff_max_s)
            return
        except (ApBusy, ApTimeout) as err:
            update.attempts += 1
            self.ctx.count("uploads_busy" if isinstance(err, ApBusy) else "uploads_timeout")
            if update.attempts >= self.cfg.upload_attempts:
                self._fail(update, f"upload failed {update.attempts} time(s): {err}", time.time())
            else:
                self._changed[update.id] = (update, None)
                self._schedule(update, time.time() + self._busy_wait)
                self._busy_wait = min(self._busy_wait * 2, self.cfg.busy_backoff_max_s)
            return
        except ApRejected as err:
            update.attempts += 1
            self._fail(update, f"AP rejected the upload: {err}", time.time())
            return
        finally:
            self._inflight = None
        self._busy_wait, self._ap_error = self.cfg.busy_backoff_s, None
        self.ctx.count("uploads")
        update.attempts += 1
        update.state, update.sent_at, update.content_hash = "sent", time.time(), digest
        update.updatecount_before = before
        self._changed[update.id] = (update, None)
        if self._inflight_failed:
            self._transfer_failed(update, time.time())
        else:
            self._apply(update, self._labels[update.label], time.time())

    # -- periodic work ---------------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        window = self.cfg.window_s
        self._window_end = math.ceil(time.time() / window) * window
        while True:
            await asyncio.sleep(TICK_S)
            now = time.time()
            self.ctx.monitor.beat()
            self._expire(now)
            self._report_health()
            await self._poll_requests()
            if self.cfg.pairing_scanners:
                await self._poll_scans(now)
            self._flush()
            while now >= self._window_end:
                start, end = self._window_end - window, self._window_end
                self._window_end += window
                self._write_window(start, end)

    def _expire(self, now: float) -> None:
        deadline = self.cfg.confirm_deadline_s
        for update in list(self._open.values()):
            if now > update.due_at + deadline:
                label = self._labels.get(update.label)
                seen = f"; label last seen {now - label.lastseen:.0f} s ago" if label and label.lastseen else ""
                self._fail(update, f"not confirmed within {deadline:.0f} s (was {update.state}{seen})", now)

    def health_counts(self, now: float) -> dict[str, int]:
        """Labels, low batteries, timed-out labels (the AP's rules) and labels the AP stopped listing."""
        low = sum(is_low_battery(r.battery_mv, self.cfg.low_battery_mv) for r in self._labels.values())
        timed_out = sum(is_timed_out(r, now, self._maxsleep_min, self.cfg.checkin_grace_s)
                        for r in self._labels.values())
        return {"labels": len(self._labels) - len(self._missing), "low_battery": low, "timed_out": timed_out,
                "missing": len(self._missing)}

    def _report_health(self) -> None:
        monitor = self.ctx.monitor
        counts = self.health_counts(time.time())
        monitor.details.update({key: str(value) for key, value in counts.items()})
        monitor.details.update(ap_state=self._ap_state, open_updates=str(len(self._open)))
        if not self._ws_up and self._ap_error is not None:
            monitor.set_state(HEALTH_UNAVAILABLE, f"access point unreachable ({self._ap_error})")
        elif self._ap_state not in ("online", "unknown"):
            monitor.set_state(HEALTH_DEGRADED, f"access point {self._ap_state}")
        elif not self._ws_up:
            monitor.set_state(HEALTH_DEGRADED, "websocket down; reconnecting")
        elif self._ap_error is not None:
            monitor.set_state(HEALTH_DEGRADED, self._ap_error)
        else:
            monitor.set_state(HEALTH_OK)

    def _flush(self) -> None:
        """Hand changed labels, history rows and update states to the writer (posted in order, not awaited)."""
        if not (self._dirty or self._history or self._changed):
            return
        ap, now = self.config.name, time.time()
        labels, history, changed = list(self._dirty.values()), self._history, list(self._changed.values())
        self._dirty, self._history, self._changed = {}, [], {}

        def write(conn: Any) -> None:
            store.save_labels(conn, ap, labels, history, now)
            store.save_update_states(conn, changed)

        assert self.ctx.store is not None
        self.ctx.store.post(write)

    def _write_window(self, start: float, end: float) -> None:
        ap, state, health = self.config.name, self._ap_state, self.health_counts(end)
        assert self.ctx.store is not None
        self.ctx.store.post(lambda conn: store.write_window(conn, ap=ap, start=start, end=end, ap_state=state,
                                                            health=health))

    # -- HQ commands, CLI requests, pairing ---------------------------------------------------------------------

    def command_names(self) -> frozenset[str]:
        """Price and content updates from HQ."""
        return frozenset({UPDATE_COMMAND})

    def handle_command(self, name: str, args: dict[str, Any], command_id: str) -> dict[str, Any]:
        """``esl/update``: store the items, queue an update for every label bound to each GTIN."""
        if name != UPDATE_COMMAND:
            raise CommandRejected(f"unknown command {name!r}")
        return self.submit_items(parse_update_args(args), command_id)

    def submit_items(self, items: list[PriceItem], command_id: str | None) -> dict[str, Any]:
        """Queue the items' labels (any thread); returns what was queued and which GTINs have no label."""
        if self.ctx.store is None or self._loop is None:
            raise CommandError("the ESL driver is not running")
        now = time.time()
        by_gtin = {item.gtin: item for item in items}

        valid_from = {item.gtin: item.valid_from.timestamp() if item.valid_from else None for item in items}

        def task(conn: Any) -> tuple[dict[str, list[str]], list[LabelUpdate]]:
            for item in items:
                store.save_item(conn, item.gtin, item.model_dump_json(), valid_from[item.gtin], command_id, now)
            bound = store.labels_for(conn, list(by_gtin))
            wanted = [(label, gtin, max(now, valid_from[gtin] or now))
                      for gtin, labels in bound.items() for label in labels]
            return bound, store.create_updates(conn, wanted, command_id, now)

        bound, created = self.ctx.store.call(task)
        self._in_loop(self._accept, by_gtin, created)
        unbound = sorted(gtin for gtin, labels in bound.items() if not labels)
        return {"items": len(items), "labels_queued": len(created),
                "scheduled": sum(update.due_at > now for update in created),
                "unbound_gtins": unbound[:50], "unbound": len(unbound),
                "update_ids": [created[0].id, created[-1].id] if created else []}

    def _in_loop(self, function: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(function, *args)

    def _accept(self, items: dict[str, PriceItem], updates: list[LabelUpdate]) -> None:
        self._items.update(items)
        self._enqueue(updates)

    async def bind(self, label_text: str, gtin: str, source: str) -> dict[str, Any]:
        """Bind a label to a GTIN, flash its LED and push the GTIN's current price if one is known."""
        label = normalize_mac(label_text)
        if label is None or label not in self._labels:
            raise CommandRejected(f"label {label_text!r} is not known to access point {self.config.name}")
        now = time.time()

        def task(conn: Any) -> tuple[str | None, tuple[str, float | None] | None, list[LabelUpdate]]:
            before = store.bind(conn, label, gtin, source, now)
            known = store.item(conn, gtin)
            created = store.create_updates(conn, [(label, gtin, now)], None, now) if known else []
            return before, known, created

        before, known, created = await self._store(task)
        if known is not None:
            self._items[gtin] = PriceItem.model_validate_json(known[0])
            self._enqueue(created)
        flashed = await self._tag_command(label, LED_BOUND)
        logger.info("ESL label %s bound to GTIN %s (%s)", label, gtin, source)
        return {"label": label, "gtin": gtin, "previous_gtin": before, "led_flashed": flashed,
                "update_id": created[0].id if created else None,
                "content": "queued" if created else "no price known for this GTIN yet"}

    async def _tag_command(self, label: str, command: str) -> bool:
        assert self._client is not None
        try:
            await self._client.tag_cmd(label, command)
        except ApError as err:
            logger.warning("ESL %s: %s for %s failed: %s", self.config.name, command, label, err)
            return False
        return True

    async def _poll_requests(self) -> None:
        device = self.config.name
        requests = await self._store(lambda conn: store.new_requests(conn, device))
        for request_id, kind, args in requests:
            state, result = "done", {}
            try:
                result = await self._run_request(kind, args)
            except (CommandRejected, CommandError) as err:
                state, result = "rejected", {"reason": str(err)}
            except Exception as err:
                logger.exception("ESL request %d failed", request_id)
                state, result = "failed", {"reason": f"{type(err).__name__}: {err}"}
            await self._store(functools.partial(store.finish_request, request_id=request_id, state=state,
                                                result=result, now=time.time()))

    async def _run_request(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        if kind == "bind":
            return await self.bind(str(args.get("label", "")), str(args.get("gtin", "")), "cli")
        if kind == "push":
            items = parse_update_args(args)
            assert self._loop is not None
            return await self._loop.run_in_executor(None, self.submit_items, items, None)
        raise CommandRejected(f"unknown request {kind!r}")

    async def _poll_scans(self, now: float) -> None:
        scanners = tuple(self.cfg.pairing_scanners)
        after = self._last_scan_id

        def read(conn: Any) -> list[tuple[int, float, str, str, str | None, int]]:
            if after is None:  # start with the scans that come after the daemon started
                return [(conn.execute(f"SELECT coalesce(max(id), 0) FROM {const.TABLE_SCANS}").fetchone()[0],
                         0.0, "", "", None, 0)]
            rows: list[tuple[int, float, str, str, str | None, int]] = conn.execute(
                f"""SELECT id, ts, device, text, gtin, valid FROM {const.TABLE_SCANS}
                    WHERE id > ? AND device IN ({", ".join("?" * len(scanners))}) ORDER BY id""",
                (after, *scanners)).fetchall()
            return rows

        rows = await self._store(read)
        for scan_id, ts, device, text, gtin, valid in rows:
            self._last_scan_id = scan_id
            if not device:
                continue
            label = normalize_mac(text)
            if label is not None and label in self._labels:
                self._pairing = (label, ts)
                await self._tag_command(label, LED_SELECT)
            elif gtin and valid and self._pairing is not None:
                label, at = self._pairing
                self._pairing = None
                if ts - at <= self.cfg.pairing_window_s:
                    result = await self.bind(label, gtin, f"scan:{device}")
                    self.ctx.count("labels_paired")
                    logger.info("ESL pairing on %s: %s", device, result)
