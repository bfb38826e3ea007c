"""Store benchmark: events/s through submit → writer thread → SQLite vs raw ``executemany`` of the same rows."""

import operator
import random
import tempfile
import time
from pathlib import Path

from edge.events import Scan
from edge.store import db
from edge.store.db import connect
from edge.store.writer import Writer

BATCH_SIZE = 5_000


def _events(count: int) -> list[Scan]:
    rng = random.Random(7)
    start = 1_790_000_000.0
    return [
        Scan(ts=start + i * 0.01, device=f"till-{i % 4}", symbology="]E0", text=f"{rng.randrange(10**12):013d}",
             kind="gtin", gtin=f"{rng.randrange(10**13):014d}", valid=True)
        for i in range(count)
    ]


def _baseline(path: Path, events: list[Scan]) -> float:
    """Raw executemany of the same rows, in transactions of the writer's batch size."""
    rows = list(map(operator.attrgetter(*Scan.COLUMNS), events))
    columns = Scan.COLUMNS
    sql = f"INSERT INTO {Scan.TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn = connect(path)
    started = time.perf_counter()
    for offset in range(0, len(rows), BATCH_SIZE):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[offset:offset + BATCH_SIZE])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def _through_writer(path: Path, events: list[Scan]) -> float:
    """The daemon's path: every event submitted from another thread, written by the writer thread."""
    writer = Writer(path, queue_size=len(events) + 1, batch_size=BATCH_SIZE, flush_interval_s=0.05,
                    min_free_disk_mb=0)
    writer.start()
    started = time.perf_counter()
    for event in events:
        writer.submit(event)
    writer.stop(timeout=120)  # stop() returns once every buffered event is committed
    elapsed = time.perf_counter() - started
    if writer.stats.written != len(events):
        raise RuntimeError(f"writer committed {writer.stats.written} of {len(events)} events")
    return len(events) / elapsed


def run(events: int = 200_000, repeat: int = 3) -> dict[str, object]:
    """Best of ``repeat`` runs of each side, alternating so both see the same machine load."""
    sample = _events(events)
    best_value = best_baseline = 0.0
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        for attempt in range(repeat):
            for name, measure in (("baseline", _baseline), ("writer", _through_writer)):
                path = Path(tmp) / f"{name}-{attempt}.db"
                db.migrate(path)
                rate = measure(path, sample)
                if name == "baseline":
                    best_baseline = max(best_baseline, rate)
                else:
                    best_value = max(best_value, rate)
    return {
        "name": "store",
        "value": round(best_value),
        "baseline": round(best_baseline),
        "ratio": round(best_value / best_baseline, 3),
        "unit": "events/s",
        "events": events,
        "repeat": repeat,
        "baseline_desc": "raw sqlite3 executemany of the same rows into the same schema, same batch size",
    }
