"""The technician's side of one AP: ``edge esl bind``/``push`` requests from the CLI, pairing a label with a product
by scanning both, and binding (the label's LED flashes, its product's price follows).

Polled from the driver's tick on its loop. It reaches the AP, the store and the update queue only through the
``AccessPoint`` the driver gives it, so the driver stays the one owner of that I/O.
"""

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from drivers.esl import store
from drivers.esl.config import EslConfig
from drivers.esl.items import PriceItem
from drivers.esl.protocol import LabelUpdate, normalize_mac
from drivers.esl.requests import parse_update_args
from edge import const
from edge.errors import CommandError, CommandRejected

logger = logging.getLogger(__name__)

T = TypeVar("T")
LED_SELECT = "ledflash"
LED_BOUND = "ledflash_long"
ScanRow = tuple[int, float, str, str, str | None, int]  # id, ts, device, text, gtin, valid


class AccessPoint(Protocol):
    """What the technician side uses of the driver that owns the AP, the store and the update queue."""

    def knows(self, label: str) -> bool:
        """Whether the AP lists the label."""
        ...

    async def in_store(self, task: Callable[[sqlite3.Connection], T]) -> T:
        """Run a task on the store writer and wait for it."""
        ...

    async def flash(self, label: str, command: str) -> bool:
        """Send an LED command to a label; False when the AP refused it (logged)."""
        ...

    def accept(self, items: dict[str, PriceItem], updates: list[LabelUpdate]) -> None:
        """Remember the items and queue their updates."""
        ...

    def submit_items(self, items: list[PriceItem], command_id: str | None) -> dict[str, Any]:
        """Store the items and queue the labels bound to them (blocks on the store)."""
        ...


class Technician:
    """CLI requests and pairing by scan for one AP."""

    def __init__(self, cfg: EslConfig, ap: AccessPoint, count: Callable[[str, int], None]) -> None:
        self.cfg = cfg
        self._ap = ap
        self._count = count
        self._pairing: tuple[str, float] | None = None  # the label scanned last, and when
        self._last_scan_id: int | None = None

    async def poll(self) -> None:
        """Answer the CLI's new requests, then follow the pairing scanners' new scans."""
        await self._poll_requests()
        if self.cfg.pairing_scanners:
            await self._poll_scans()

    async def bind(self, label_text: str, gtin: str, source: str) -> dict[str, Any]:
        """Bind a label to a GTIN, flash its LED and push the GTIN's current price if one is known."""
        label = normalize_mac(label_text)
        if label is None or not self._ap.knows(label):
            raise CommandRejected(f"label {label_text!r} is not known to access point {self.cfg.name}")
        now = time.time()

        def task(conn: sqlite3.Connection) -> tuple[str | None, tuple[str, float | None] | None, list[LabelUpdate]]:
            before = store.bind(conn, label, gtin, source, now)
            known = store.item(conn, gtin)
            created = store.create_updates(conn, [(label, gtin, now)], None, now) if known else []
            return before, known, created

        before, known, created = await self._ap.in_store(task)
        if known is not None:
            self._ap.accept({gtin: PriceItem.model_validate_json(known[0])}, created)
        flashed = await self._ap.flash(label, LED_BOUND)
        logger.info("ESL label %s bound to GTIN %s (%s)", label, gtin, source)
        return {"label": label, "gtin": gtin, "previous_gtin": before, "led_flashed": flashed,
                "update_id": created[0].id if created else None,
                "content": "queued" if created else "no price known for this GTIN yet"}

    async def _poll_requests(self) -> None:
        device = self.cfg.name
        requests = await self._ap.in_store(lambda conn: store.new_requests(conn, device))
        for request_id, kind, args in requests:
            state, result = "done", {}
            try:
                result = await self._run_request(kind, args)
            except (CommandRejected, CommandError) as err:
                state, result = "rejected", {"reason": str(err)}
            except Exception as err:
                logger.exception("ESL request %d failed", request_id)
                state, result = "failed", {"reason": f"{type(err).__name__}: {err}"}
            await self._ap.in_store(functools.partial(store.finish_request, request_id=request_id, state=state,
                                                      result=result, now=time.time()))

    async def _run_request(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        if kind == "bind":
            return await self.bind(str(args.get("label", "")), str(args.get("gtin", "")), "cli")
        if kind == "push":
            items = parse_update_args(args)
            # submit_items waits for the store writer: off the loop, like an HQ command on the MQTT thread.
            return await asyncio.get_running_loop().run_in_executor(None, self._ap.submit_items, items, None)
        raise CommandRejected(f"unknown request {kind!r}")

    async def _poll_scans(self) -> None:
        scanners = tuple(self.cfg.pairing_scanners)
        after = self._last_scan_id

        def read(conn: sqlite3.Connection) -> list[ScanRow]:
            if after is None:  # start with the scans that come after the daemon started
                return [(conn.execute(f"SELECT coalesce(max(id), 0) FROM {const.TABLE_SCANS}").fetchone()[0],
                         0.0, "", "", None, 0)]
            rows: list[ScanRow] = conn.execute(
                f"""SELECT id, ts, device, text, gtin, valid FROM {const.TABLE_SCANS}
                    WHERE id > ? AND device IN ({", ".join("?" * len(scanners))}) ORDER BY id""",
                (after, *scanners)).fetchall()
            return rows

        for scan_id, ts, device, text, gtin, valid in await self._ap.in_store(read):
            self._last_scan_id = scan_id
            if not device:
                continue
            label = normalize_mac(text)
            if label is not None and self._ap.knows(label):
                self._pairing = (label, ts)
                await self._ap.flash(label, LED_SELECT)
            elif gtin and valid and self._pairing is not None:
                label, at = self._pairing
                self._pairing = None
                if ts - at <= self.cfg.pairing_window_s:
                    result = await self.bind(label, gtin, f"scan:{device}")
                    self._count("labels_paired", 1)
                    logger.info("ESL pairing on %s: %s", device, result)
