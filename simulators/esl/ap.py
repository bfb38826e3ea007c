"""A fake OpenEPaperLink access point on loopback: real HTTP and ``/ws`` (aiohttp) in its own thread and loop.

A driver talks to it exactly as to a real AP. The failure knobs (reboot, offline, dropped websockets, a stalled
``/get_db`` page, silent tags, batteries, buttons) are thread-safe, so a test pulls them from its own thread; they
run on the AP's loop, where all state lives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from simulators.esl.endpoints import Endpoints
from simulators.esl.engine import STAT_KEYS, Engine
from simulators.esl.fleet import WAKEUP_BUTTON1, SimTag, make_fleet
from simulators.esl.hub import WsHub

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long a reboot lets clients read REBOOTING and the close frame before the AP goes dark (the firmware waits
# about 100 ms twice), and the ws close handshake timeout.
_GOODBYE_S = 0.3


class FakeAP:
    """A simulated OEPL access point serving ``tags`` over real HTTP and websocket on ``host:port``."""

    def __init__(self, tags: int | list[SimTag] = 2000, *, seed: int = 1, checkin_s: float = 40.0,
                 upload_s: float = 0.05, failing_share: float = 0.0, low_battery_share: float = 0.02,
                 transfer_kbps: float = 5.0, sys_interval_s: float = 5.0, maxsleep_min: int = 10,
                 host: str = "127.0.0.1", port: int = 0, counts_interval_s: float = 0.0,
                 pos_wraps: bool = False) -> None:
        """``counts_interval_s=60`` sends ``lowbattcount``/``timeoutcount`` once a minute like the firmware (0: in
        every ``sys``); ``pos_wraps`` copies the firmware's ``uint8_t startPos`` (``?pos=256`` reads as 0)."""
        self._fleet = make_fleet(tags, seed, failing_share, low_battery_share) if isinstance(tags, int) else tags
        self._seed = seed
        self._checkin_s = checkin_s
        self._upload_s = upload_s
        self._transfer_kbps = transfer_kbps
        self._sys_interval_s = sys_interval_s
        self._counts_interval_s = counts_interval_s
        self._maxsleep_min = maxsleep_min
        self._pos_wraps = pos_wraps
        self._host = host
        self._port = port
        self._clock_offset = 0.0  # moved by POST /set_time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._hub: WsHub | None = None
        self._endpoints: Endpoints | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._kick: asyncio.Event | None = None
        self._power_lock: asyncio.Lock | None = None
        self._powered = True
        self._offline = False
        self._last_counts: float | None = None
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the AP's loop in a daemon thread; returns once it is listening."""
        if self._thread is not None:
            raise RuntimeError("FakeAP already started")
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, args=(loop, ready), name="esl-fake-ap", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout=30)
        except BaseException:
            self._stopped = True  # the thread has closed its loop; stop() has nothing left to do
            self._thread.join(timeout=10)
            raise

    def stop(self) -> None:
        """Close every connection and end the thread; safe to call more than once."""
        if self._stopped or self._loop is None or self._thread is None:
            return
        self._stopped = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._boot())
        except Exception as err:  # handed to start(), which waits in another thread
            ready.set_exception(err)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _boot(self) -> None:
        loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._power_lock = asyncio.Lock()
        hub = self._hub = WsHub(self._clients_changed, _GOODBYE_S)
        engine = self._engine = Engine(self._fleet, seed=self._seed, checkin_s=self._checkin_s,
                                       transfer_kbps=self._transfer_kbps, maxsleep_min=self._maxsleep_min,
                                       send=hub.send, mono=loop.time(), epoch=self._epoch())
        self._endpoints = Endpoints(engine, upload_s=self._upload_s, pos_wraps=self._pos_wraps,
                                    maxsleep_min=self._maxsleep_min, epoch=self._epoch, set_epoch=self._set_epoch)
        await self._listen()
        self._tasks = [asyncio.create_task(self._radio()), asyncio.create_task(self._sys_loop())]

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._unlisten()

    # --- properties ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (the one the OS picked when constructed with ``port=0``, once started)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, like ``http://127.0.0.1:8080``; the websocket is ``ws://`` at ``url + "/ws"``."""
        return f"http://{self._host}:{self._port}"

    @property
    def stats(self) -> dict[str, int]:
        """Counters: uploads_ok/_409/_400, transfers_ok/_failed, get_db_pages, ws_clients, led_flashes, ..."""
        if self._engine is None:
            return dict.fromkeys((*STAT_KEYS, "ws_clients", "ws_dropped"), 0)

        def read() -> dict[str, int]:
            hub = self._need(self._hub)
            return {**self._need(self._engine).stats, "ws_clients": len(hub), "ws_dropped": hub.dropped}

        return self._call(read)

    # --- knobs (thread-safe) ----------------------------------------------------------------------------------------

    def reboot(self, down_s: float = 2.0, *, coming_online_s: float = 1.0) -> None:
        """Broadcast REBOOTING, close every ws, refuse connections for ``down_s``, then come back COMING_ONLINE
        (uploads get 409) for ``coming_online_s`` before RUN. Returns once the AP is down. The tag DB is kept."""
        self._await(self._reboot(down_s, coming_online_s))

    def set_offline(self, offline: bool) -> None:
        """Stop (or resume) listening on the same port; the radio side keeps running while off the network."""
        self._await(self._set_offline(offline))

    def drop_websockets(self) -> None:
        """Cut every websocket's TCP connection without a close frame or REBOOTING message."""
        self._call(lambda: self._need(self._hub).abort_all())

    def stall_get_db(self, after_pages: int, stall_s: float) -> None:
        """One-shot: the ``/get_db`` page request number ``after_pages`` (0-based, from now) hangs ``stall_s``."""
        self._call(lambda: self._need(self._endpoints).stall_get_db(after_pages, stall_s))

    def silence(self, mac: str) -> None:
        """The tag stops checking in (it is gone); its record stays in the DB and its queue stays pending."""
        self._call(lambda: setattr(self._need(self._engine).tags[mac], "silenced", True))

    def set_battery(self, mac: str, mv: int) -> None:
        """The tag's battery voltage from now on; the AP's record shows it after the tag's next check-in."""
        self._call(lambda: setattr(self._need(self._engine).tags[mac], "battery_mv", mv))

    def press_button(self, mac: str, reason: int = WAKEUP_BUTTON1) -> None:
        """The tag wakes and checks in at once, reporting ``reason`` as its wakeupReason (4 = BUTTON1)."""

        def press() -> None:
            self._need(self._engine).wake(mac, reason, asyncio.get_running_loop().time())
            self._need(self._kick).set()

        self._call(press)

    def macs(self) -> list[str]:
        """Every simulated tag's MAC, in fleet order."""
        return [tag.mac for tag in self._fleet]

    def tag(self, mac: str) -> dict[str, object]:
        """The AP's record for ``mac`` exactly as ``/get_db`` returns it; KeyError when it is not in the DB."""

        def read() -> dict[str, object]:
            rec = self._need(self._engine).db.get(mac)
            if rec is None:
                raise KeyError(mac)
            return rec.wire()

        return self._call(read)

    def content(self, mac: str) -> list[object] | bytes | None:
        """What the tag displays after its last completed transfer: the json template, the JPEG bytes, or None."""
        return self._call(lambda: self._need(self._engine).tags[mac].displayed)

    # --- thread plumbing --------------------------------------------------------------------------------------------

    @staticmethod
    def _need(part: T | None) -> T:
        if part is None:
            raise RuntimeError("FakeAP is not started")
        return part

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the AP's loop and return its result."""
        loop = self._need(self._loop)
        if self._stopped or threading.current_thread() is self._thread:
            return fn()  # the loop is gone, or this is it: nothing else touches the state
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except Exception as err:  # re-raised in the caller's thread
                done.set_exception(err)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def _await(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._loop is None or self._stopped:
            coro.close()
            raise RuntimeError("FakeAP is not running")
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _epoch(self) -> float:
        return time.time() + self._clock_offset

    def _set_epoch(self, epoch: int) -> None:
        """POST /set_time: move the AP's clock and tell the ws clients at once, as the firmware does."""
        self._clock_offset = epoch - time.time()
        self._send_sys()

    def _clients_changed(self, count: int) -> None:
        if self._engine is not None:
            self._engine.listening = count > 0  # nobody listening: the engine skips building ws messages

    # --- radio and sys loops -----------------------------------------------------------------------------------------

    async def _radio(self) -> None:
        """One task runs every tag's check-ins and transfers off the engine's heap."""
        loop = asyncio.get_running_loop()
        engine, kick = self._need(self._engine), self._need(self._kick)
        while True:
            delay = engine.step(loop.time(), self._epoch())
            kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kick.wait(), delay)

    async def _sys_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sys_interval_s)
            if self._powered:
                self._send_sys()

    def _send_sys(self) -> None:
        mono = asyncio.get_running_loop().time()
        with_counts = (self._counts_interval_s <= 0 or self._last_counts is None
                       or mono - self._last_counts >= self._counts_interval_s)
        if with_counts:
            self._last_counts = mono  # the firmware's tagcounttimer runs whether or not anybody listens
        hub = self._need(self._hub)
        if len(hub):
            hub.send(self._need(self._engine).sys(mono, self._epoch(), with_counts=with_counts))

    # --- power and listening ----------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        app = self._need(self._endpoints).app(self._need(self._hub).handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.05)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        logger.info("fake OEPL AP listening on %s", self.url)

    async def _unlisten(self) -> None:
        """Close the listening socket and every open connection, as when the AP drops off the network."""
        self._need(self._hub).abort_all()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _sync_listening(self) -> None:
        async with self._need(self._power_lock):
            want = self._powered and not self._offline
            if want and self._runner is None:
                await self._listen()
            elif not want and self._runner is not None:
                await self._unlisten()

    async def _set_offline(self, offline: bool) -> None:
        self._offline = offline
        await self._sync_listening()

    async def _reboot(self, down_s: float, coming_online_s: float) -> None:
        if not self._powered:
            return
        self._need(self._engine).power_down()  # runstate STOP from here: uploads get 409 during the goodbye
        await self._need(self._hub).close_all(json.dumps({"errMsg": "REBOOTING"}))
        self._powered = False
        await self._sync_listening()
        self._tasks.append(asyncio.create_task(self._come_back(down_s, coming_online_s)))

    async def _come_back(self, down_s: float, coming_online_s: float) -> None:
        loop = asyncio.get_running_loop()
        engine = self._need(self._engine)
        await asyncio.sleep(down_s)
        engine.power_up(loop.time())
        self._powered = True
        await self._sync_listening()
        await asyncio.sleep(coming_online_s)
        engine.online(loop.time())
