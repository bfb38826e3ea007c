"""Read-only queries behind the CLI's reports."""

import sqlite3
from dataclasses import dataclass

from edge import const


@dataclass(slots=True, frozen=True)
class ScanRow:
    """One stored scan as the CLI lists it."""

    ts: float
    device: str
    symbology: str | None
    text: str
    kind: str
    gtin: str | None
    valid: bool
    error: str | None
    price_minor: int | None
    weight_g: int | None


@dataclass(slots=True, frozen=True)
class ScanSummary:
    """Scans of one device over a period."""

    device: str
    scans: int
    valid: int
    invalid: int
    distinct_gtins: int
    by_kind: dict[str, int]

    @property
    def invalid_rate(self) -> float:
        """Share of scans that were invalid."""
        return self.invalid / self.scans if self.scans else 0.0


def scans(conn: sqlite3.Connection, since: float, device: str | None = None, limit: int = 100) -> list[ScanRow]:
    """The newest scans since ``since``, newest first."""
    sql = f"""SELECT ts, device, symbology, text, kind, gtin, valid, error, price_minor, weight_g
              FROM {const.TABLE_SCANS} WHERE ts >= ?"""
    params: list[object] = [since]
    if device is not None:
        sql += " AND device = ?"
        params.append(device)
    sql += " ORDER BY ts DESC, id DESC LIMIT ?"
    params.append(limit)
    return [ScanRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9])
            for r in conn.execute(sql, params)]


def scan_summary(conn: sqlite3.Connection, since: float) -> list[ScanSummary]:
    """Per-device totals of scans since ``since``."""
    totals = conn.execute(
        f"""SELECT device, count(*), sum(valid), count(DISTINCT CASE WHEN valid THEN gtin END)
            FROM {const.TABLE_SCANS} WHERE ts >= ? GROUP BY device ORDER BY device""",
        (since,),
    ).fetchall()
    kinds: dict[str, dict[str, int]] = {}
    for device, kind, count in conn.execute(
        f"SELECT device, kind, count(*) FROM {const.TABLE_SCANS} WHERE ts >= ? GROUP BY device, kind", (since,)
    ):
        kinds.setdefault(device, {})[kind] = count
    return [
        ScanSummary(device=d, scans=n, valid=v or 0, invalid=n - (v or 0), distinct_gtins=g, by_kind=kinds.get(d, {}))
        for d, n, v, g in totals
    ]


def outbox_backlog_by_kind(conn: sqlite3.Connection) -> dict[str, int]:
    """Unsent outbox messages per kind."""
    rows = conn.execute(
        f"""SELECT kind, count(*) FROM {const.TABLE_OUTBOX} WHERE sent_at IS NULL AND error IS NULL
            GROUP BY kind ORDER BY kind"""
    ).fetchall()
    return {kind: count for kind, count in rows}
