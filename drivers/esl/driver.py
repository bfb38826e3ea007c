"""OpenEPaperLink access-point driver: label state from the websocket and /get_db, price updates from HQ through a
single-flight upload queue, confirmation by the labels' own check-ins, pairing by scan, requests from the CLI.

Everything runs on one asyncio loop in the driver's thread, so the label table and the update queue have one
owner; HQ commands (MQTT thread) only write to the store and hand the new updates to the loop. State lives in
SQLite (the daemon's writer): a restart resumes every open update. Timing follows the AP: an update is *sent*
when the AP accepted the upload, *pending* once the AP shows it queued for the label, *confirmed* when the label's
update count moves (its transfer completed), and *failed* with a reason otherwise; those rules are in ``updates``,
the technician's requests and pairing in ``technician``. This module does the I/O.
"""

import asyncio
import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp

from drivers.esl import store
from drivers.esl.apclient import ApBusy, ApClient, ApError, ApRejected, ApTimeout, ApUnreachable
from drivers.esl.config import EslConfig
from drivers.esl.drawing import ContentError
from drivers.esl.items import PriceItem
from drivers.esl.labels import LabelTable
from drivers.esl.protocol import LabelUpdate, Rebooting, SysStatus, TagRecord, TagsUpdate, Transfer, parse_ws
from drivers.esl.render import LabelContent
from drivers.esl.requests import UPDATE_COMMAND, parse_update_args
from drivers.esl.technician import Technician
from drivers.esl.updates import UpdateBook
from edge.const import HEALTH_DEGRADED, HEALTH_OK, HEALTH_UNAVAILABLE
from edge.driver import Driver, DriverContext
from edge.errors import CommandError, CommandRejected

logger = logging.getLogger(__name__)

T = TypeVar("T")
TICK_S = 0.5


class EslDriver(Driver):
    """One OpenEPaperLink-compatible access point."""

    type_key = "esl"

    def __init__(self, config: EslConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.cfg = config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._labels = LabelTable(config)
        self._content = LabelContent(config.content, config.content_dir)
        self._book = UpdateBook(upload_attempts=config.upload_attempts, transfer_attempts=config.transfer_attempts,
                                confirm_deadline_s=config.confirm_deadline_s, ap_keeps_content=config.content == "json",
                                count=ctx.count, wake=self._wake_uploader)
        self._technician = Technician(config, self, ctx.count)
        self._work: asyncio.Event | None = None
        self._reconcile_now: asyncio.Event | None = None
        self._db_complete = False
        self._ap_running = True  # until the AP says otherwise: it answers 409 to every upload while not in RUN
        self._ws_up = False
        self._ap_state = "unknown"
        self._ap_error: str | None = None
        self._last_upload_start = 0.0
        self._inflight: str | None = None
        self._inflight_failed = False
        self._reboots = 0
        self._busy_wait = config.busy_backoff_s
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
        try:
            self._content.load()
        except ContentError as err:
            logger.error("ESL %s: label content unavailable: %s", self.config.name, err)

    async def in_store(self, task: Callable[[sqlite3.Connection], T]) -> T:
        """Run a task on the store writer and wait for it (on the loop)."""
        assert self.ctx.store is not None
        return await asyncio.wrap_future(self.ctx.store.post(task))

    async def _warm_start(self) -> None:
        ap = self.config.name

        def load(conn: Any) -> tuple[list[TagRecord], set[str], list[LabelUpdate], dict[str, str], dict[str, str]]:
            updates = store.open_updates(conn)
            return (store.load_labels(conn, ap), store.missing_labels(conn, ap), updates, store.shown_content(conn),
                    store.items(conn, (u.gtin for u in updates)))

        labels, missing, updates, shown, items = await self.in_store(load)
        self._labels.load(labels, missing)
        self._book.shown = shown
        self._content.items = {gtin: PriceItem.model_validate_json(text) for gtin, text in items.items()}
        self._book.enqueue(updates, time.time())
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
                self._labels.heard_at[record.mac] = time.monotonic()
                self._on_record(record, now)
            if message.malformed:
                self.ctx.count("tag_records_malformed", message.malformed)
        elif isinstance(message, SysStatus):
            self._ap_running = message.run_state == "run"
            self._ap_state = message.ap_state if self._ap_running else f"{message.ap_state}/{message.run_state}"
        elif isinstance(message, Transfer) and not message.ok:
            self._inflight_failed = self._inflight_failed or message.mac == self._inflight
            self._book.transfer_timed_out(message.mac, self._labels.records.get(message.mac), now)
        elif isinstance(message, Rebooting):
            self._on_reboot(now)
            return True
        return False

    def _on_reboot(self, now: float) -> None:
        # The AP's queues are in RAM: what it accepted and the labels have not taken is gone. Uploads wait until
        # it runs again and a complete /get_db shows the labels as the rebooted AP has them.
        self._ap_state, self._ap_running, self._db_complete = "rebooting", False, False
        self._reboots += 1
        requeued = self._book.rebooted(now)
        logger.warning("ESL access point %s is rebooting; %d update(s) it had accepted will be sent again",
                       self.config.name, requeued)

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
                self._labels.maxsleep_min = maxsleep
        except ApError:
            pass
        started = time.monotonic()
        fetch = await client.fetch_db(self.cfg.get_db_retries)
        now = time.time()
        for record in fetch.records:
            # A page is a snapshot from before the fetch ended: a label heard on the websocket (or uploaded to)
            # since the fetch began is fresher than it, so its page record is not applied.
            if self._labels.heard_at.get(record.mac, 0.0) < started:
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
        self._labels.listed(present)
        ap = self.config.name
        self._flush()
        gone = await self.in_store(lambda conn: store.mark_missing(conn, ap, present, now))
        if gone:
            logger.warning("ESL %s: %d label(s) no longer listed by the AP (kept, marked missing)", ap, gone)
        self._wake_uploader()

    def _on_record(self, record: TagRecord, now: float) -> None:
        self._labels.update(record, now)
        self.ctx.monitor.event(now)
        self._book.observe(record, now)

    # -- the upload queue (one in flight) ----------------------------------------------------------------------

    def _wake_uploader(self) -> None:
        if self._work is not None:
            self._work.set()

    async def _uploader(self) -> None:
        assert self._work is not None and self._client is not None
        while True:
            now = time.time()
            ready = self._db_complete and self._ap_running
            update, next_at = self._book.next_due(now) if ready else (None, None)
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

    async def _upload(self, client: ApClient, update: LabelUpdate) -> None:
        book = self._book
        try:
            payload, digest = self._content.payload(update, self._labels.records.get(update.label))
        except ContentError as err:
            book.fail(update, str(err), time.time())
            return
        label = self._labels.records[update.label]
        if book.shown.get(update.label) == digest and label.pending == 0:
            book.already_shown(update, digest, time.time())
            return
        self._last_upload_start = time.monotonic()
        # The label may check in and finish (or fail) the transfer before the AP's answer reaches us: take the
        # update count now and watch for a transfer failure of this label (or a reboot) while it is in flight.
        before, reboots = label.updatecount or 0, self._reboots
        self._inflight, self._inflight_failed = update.label, False
        self._labels.heard_at[update.label] = time.monotonic()
        try:
            if self.cfg.content == "image":
                await client.image_upload(update.label, payload)
            else:
                await client.json_upload(update.label, payload)
        except ApUnreachable as err:
            # The AP is offline or rebooting: nothing is charged to the update; it waits for the AP.
            self._ap_error = str(err)
            self.ctx.count("uploads_unreachable")
            book.schedule(update, time.time() + self._busy_wait)
            self._busy_wait = min(self._busy_wait * 2, self.cfg.busy_backoff_max_s)
            return
        except (ApBusy, ApTimeout) as err:
            self.ctx.count("uploads_busy" if isinstance(err, ApBusy) else "uploads_timeout")
            if book.busy(update, str(err), time.time() + self._busy_wait, time.time()):
                self._busy_wait = min(self._busy_wait * 2, self.cfg.busy_backoff_max_s)
            return
        except ApRejected as err:
            book.rejected(update, str(err), time.time())
            return
        finally:
            self._inflight = None
        self._busy_wait, self._ap_error = self.cfg.busy_backoff_s, None
        self.ctx.count("uploads")
        book.sent(update, digest, before, self._labels.records[update.label], time.time(),
                  transfer_failed=self._inflight_failed)
        if self._reboots != reboots and update.state in ("sent", "pending"):
            book.requeue(update, time.time())  # the AP answered, then rebooted: the upload went with its queue

    # -- periodic work ---------------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        window = self.cfg.window_s
        self._window_end = math.ceil(time.time() / window) * window
        while True:
            await asyncio.sleep(TICK_S)
            now = time.time()
            self.ctx.monitor.beat()
            self._book.expire(now, self._labels.records)
            self._report_health()
            await self._technician.poll()
            self._flush()
            while now >= self._window_end:
                start, end = self._window_end - window, self._window_end
                self._window_end += window
                self._write_window(start, end)

    def health_counts(self, now: float) -> dict[str, int]:
        """Labels, low batteries, timed-out labels (the AP's rules) and labels the AP stopped listing."""
        return self._labels.health_counts(now)

    def _report_health(self) -> None:
        monitor = self.ctx.monitor
        counts = self.health_counts(time.time())
        monitor.details.update({key: str(value) for key, value in counts.items()})
        monitor.details.update(ap_state=self._ap_state, open_updates=str(len(self._book.open)))
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
        (labels, history), changed = self._labels.take_changes(), self._book.take_changes()
        if not (labels or history or changed):
            return
        ap, now = self.config.name, time.time()

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

    # -- HQ commands, and what the technician side uses ---------------------------------------------------------

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
        self._loop.call_soon_threadsafe(self.accept, by_gtin, created)
        unbound = sorted(gtin for gtin, labels in bound.items() if not labels)
        return {"items": len(items), "labels_queued": len(created),
                "scheduled": sum(update.due_at > now for update in created),
                "unbound_gtins": unbound[:50], "unbound": len(unbound),
                "update_ids": [created[0].id, created[-1].id] if created else []}

    def accept(self, items: dict[str, PriceItem], updates: list[LabelUpdate]) -> None:
        """Remember the items and queue their updates (on the loop)."""
        self._content.items.update(items)
        self._book.enqueue(updates, time.time())

    def knows(self, label: str) -> bool:
        """Whether the AP lists the label (on the loop)."""
        return label in self._labels.records

    async def flash(self, label: str, command: str) -> bool:
        """Send an LED command to a label; False when the AP refused it (logged)."""
        assert self._client is not None
        try:
            await self._client.tag_cmd(label, command)
        except ApError as err:
            logger.warning("ESL %s: %s for %s failed: %s", self.config.name, command, label, err)
            return False
        return True
