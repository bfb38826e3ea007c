"""Till scans of the store day: ``tills.jsonl`` and a player that types them into pty scanners at an accelerated clock.

``tills.jsonl`` holds one scan a line in time order: ``{"ts", "till", "code", "aim", "gtin", "txn"}`` where
``code`` is what the scanner types after its AIM prefix ``aim``, ``gtin`` the item's GTIN-14 and ``txn`` the
transaction (its boundaries are in ``truth.json``). Scans of one transaction are 1.5-4 s apart; a till is idle at
least 20 s between transactions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from simulators.barcode.model import SimScan
from simulators.store.model import ItemScan, StoreDay


class ScannerLike(Protocol):
    """Anything that types a scan, such as ``simulators.barcode.scanner.PtyScanner``."""

    def send(self, scan: SimScan) -> None:
        """Type one scan."""


class AcceleratedClock:
    """Simulated time that runs ``scale`` times faster than wall time, from ``start_sim_ts`` at construction.

    ``scale = 480`` replays a 12-hour day in 90 seconds. ``stop()`` wakes every ``sleep_until`` at once.
    """

    def __init__(self, start_sim_ts: float, scale: float, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.start_sim_ts = start_sim_ts
        self.scale = scale
        self._monotonic = monotonic
        self._wall0 = monotonic()
        self._stop = threading.Event()

    def now(self) -> float:
        """The simulated time now."""
        return self.start_sim_ts + (self._monotonic() - self._wall0) * self.scale

    def wall_delay(self, sim_ts: float) -> float:
        """Wall-clock seconds until the simulated time reaches ``sim_ts`` (negative once past)."""
        return (sim_ts - self.now()) / self.scale

    def sleep_until(self, sim_ts: float) -> bool:
        """Wait until the simulated time reaches ``sim_ts``; False if ``stop()`` cut the wait short."""
        while (delay := self.wall_delay(sim_ts)) > 0:
            if self._stop.wait(delay):
                return False
        return not self._stop.is_set()

    def stop(self) -> None:
        """End every current and future wait."""
        self._stop.set()


def scans(day: StoreDay) -> list[ItemScan]:
    """Every item scan of the day in time order."""
    return sorted((s for t in day.transactions for s in t.scans), key=lambda s: (s.ts, s.till))


def write_tills(day: StoreDay, path: Path) -> int:
    """Write ``tills.jsonl``; returns the number of scans."""
    rows = scans(day)
    path.write_text("".join(json.dumps({"ts": s.ts, "till": s.till, "code": s.code, "aim": s.aim, "gtin": s.gtin,
                                        "txn": s.txn}) + "\n" for s in rows), encoding="utf-8")
    return len(rows)


def read_tills(path: Path) -> Iterator[ItemScan]:
    """The scans of a ``tills.jsonl`` file, in file order."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                yield ItemScan(float(row["ts"]), row["till"], row["aim"], row["code"], row["gtin"], int(row["txn"]))


def play_tills(path: Path, scanners: dict[str, ScannerLike], clock: AcceleratedClock, *,
               skip_past: bool = False) -> int:
    """Type each scan of ``path`` into its till's scanner when ``clock`` reaches its time; returns scans typed.

    Scans already due when the player starts are typed at once (or dropped with ``skip_past``). Start the
    scanners, and wait for the daemon to open them, before calling this: a pty nobody reads fills up.
    """
    sent = 0
    for scan in read_tills(path):
        scanner = scanners.get(scan.till)
        if scanner is None:
            raise KeyError(f"no scanner for till {scan.till!r}; have {sorted(scanners)}")
        if skip_past and clock.wall_delay(scan.ts) < 0:
            continue
        if not clock.sleep_until(scan.ts):
            break
        scanner.send(SimScan(aim=scan.aim, payload=scan.code, valid=True, kind="gtin", gtin=scan.gtin))
        sent += 1
    return sent
