"""ESL benchmark: a price change pushed to 2,000 labels through the fake OpenEPaperLink AP.

``value``: uploads/s the ESL driver achieves from accepting the ``esl/update`` command to the AP having accepted
the last label's upload — validation, the store (updates created and tracked through the daemon's writer), the
label's template rendered per tag type, the single-flight queue. ``baseline``: the simulator's maximum accepted
upload rate, measured in the same run by a bare client posting pre-rendered payloads back to back, one in flight
(the AP holds each upload ``upload_s`` and answers 409 to a second one). A ratio of 1 means the gateway keeps the
AP as busy as it can be.
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp

from drivers.barcode.gs1 import gtin_check_digit
from drivers.esl.config import SHIPPED_CONTENT, EslConfig
from drivers.esl.content import json_payload, load_tag_types, load_templates, render_json
from drivers.esl.driver import EslDriver
from drivers.esl.items import PriceItem
from edge import const
from edge.driver import DriverContext, EventSink
from edge.events import Event
from edge.health import DeviceMonitor
from edge.store.db import migrate
from edge.store.writer import Writer
from simulators.esl import FakeAP

LABELS = 2000
UPLOAD_S = 0.02  # the AP's time to store one upload (flash write); 50 uploads/s at most


class _NoEvents(EventSink):
    def submit(self, event: Event) -> bool:
        return True


def _gtin(n: int) -> str:
    body = f"0400{n:09d}"
    return body + str(gtin_check_digit(body))


def _items(price: str) -> list[dict[str, str]]:
    return [{"gtin": _gtin(n), "price": price, "currency": "EUR", "name": f"Product {n}"} for n in range(LABELS)]


async def _bare_uploads(url: str, payloads: list[tuple[str, bytes]]) -> float:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for mac, payload in payloads:
            while True:
                async with session.post(url + "/jsonupload", data={"mac": mac, "json": payload.decode()}) as reply:
                    await reply.read()
                    if reply.status == 200:
                        break
        return time.perf_counter() - started


def _baseline(ap: FakeAP) -> float:
    tag_types = load_tag_types(SHIPPED_CONTENT / "tagtypes")
    templates = load_templates(SHIPPED_CONTENT / "templates")
    payloads = []
    for mac, raw in zip(ap.macs(), _items("9.99"), strict=True):
        tag_type = tag_types[int(ap.tag(mac)["hwType"])]  # type: ignore[call-overload]
        payloads.append((mac, json_payload(render_json(PriceItem.model_validate(raw), tag_type, templates))))
    elapsed = asyncio.run(_bare_uploads(ap.url, payloads))
    return LABELS / elapsed


def _driver_rate(ap: FakeAP, directory: Path) -> float:
    db = directory / "edge.db"
    migrate(db)
    writer = Writer(db, queue_size=10_000, batch_size=500, flush_interval_s=0.05, min_free_disk_mb=0)
    writer.start()
    macs = ap.macs()
    writer.call(lambda conn: conn.executemany(
        f"INSERT INTO {const.TABLE_ESL_BINDINGS} (label, gtin, bound_at, source) VALUES (?, ?, 0, 'bench')",
        [(mac, _gtin(n)) for n, mac in enumerate(macs)]))
    config = EslConfig.model_validate({"name": "ap-1", "type": "esl", "url": ap.url})
    monitor = DeviceMonitor(name="ap-1", kind="esl")
    driver = EslDriver(config, DriverContext(monitor, _NoEvents(), None, writer))
    driver.start()
    try:
        while monitor.details.get("labels") != str(LABELS):
            time.sleep(0.05)
        time.sleep(0.5)  # the first full /get_db has completed: uploads may start
        before = monitor.counters["uploads"]
        started = time.perf_counter()
        driver.handle_command("esl/update", {"items": _items("1.49")}, "bench")
        while monitor.counters["uploads"] - before < LABELS:
            time.sleep(0.005)
        return LABELS / (time.perf_counter() - started)
    finally:
        driver.stop()
        writer.stop()


def run() -> dict[str, object]:
    """Measure both sides against one simulator (baseline first: its content differs, so nothing is skipped)."""
    ap = FakeAP(LABELS, seed=7, upload_s=UPLOAD_S, checkin_s=40.0)
    ap.start()
    try:
        baseline = _baseline(ap)
        with tempfile.TemporaryDirectory(prefix="edge-bench-esl-") as scratch:
            value = _driver_rate(ap, Path(scratch))
        rejected = ap.stats["uploads_409"]
    finally:
        ap.stop()
    return {"name": "esl", "value": round(value, 2), "baseline": round(baseline, 2),
            "ratio": round(value / baseline, 3), "unit": "uploads/s", "labels": LABELS,
            "ap_upload_s": UPLOAD_S, "uploads_409": rejected}


def main() -> None:
    """``python -m simulators.bench.esl [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    result = run()
    if parser.parse_args().json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
