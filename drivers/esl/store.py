"""The ESL driver's SQL: labels and their history, bindings, price items, label updates, technician requests and
the per-window rows for HQ. Every function takes the writer's connection and runs inside its transaction."""

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from drivers.esl.protocol import OPEN_STATES, LabelUpdate, TagRecord
from edge import const

_LABEL_COLUMNS = ("label", "ap", "hw_type", "battery_mv", "rssi", "lqi", "temperature", "lastseen", "nextcheckin",
                  "pending", "wakeup_reason", "capabilities", "updatecount", "updatelast", "hash", "version",
                  "channel", "first_seen", "updated_at")
_HISTORY_COLUMNS = ("ts", "label", "battery_mv", "rssi", "lqi", "lastseen", "nextcheckin", "pending",
                    "wakeup_reason", "updatecount")


def _label_row(ap: str, record: TagRecord, now: float) -> tuple[object, ...]:
    return (record.mac, ap, record.hw_type, record.battery_mv, record.rssi, record.lqi, record.temperature,
            record.lastseen, record.nextcheckin, record.pending, record.wakeup_reason, record.capabilities,
            record.updatecount, record.updatelast, record.hash, record.version, record.channel, now, now)


def save_labels(conn: sqlite3.Connection, ap: str, records: Iterable[TagRecord], history: Iterable[TagRecord],
                now: float) -> None:
    """Upsert the labels' current state (a label heard again is no longer missing) and append history rows."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in _LABEL_COLUMNS if c not in ("label", "first_seen"))
    conn.executemany(
        f"""INSERT INTO {const.TABLE_ESL_LABELS} ({", ".join(_LABEL_COLUMNS)})
            VALUES ({", ".join("?" * len(_LABEL_COLUMNS))})
            ON CONFLICT(label) DO UPDATE SET {updates}, missing_since = NULL""",
        [_label_row(ap, record, now) for record in records],
    )
    conn.executemany(
        f"""INSERT INTO {const.TABLE_ESL_LABEL_HISTORY} ({", ".join(_HISTORY_COLUMNS)})
            VALUES ({", ".join("?" * len(_HISTORY_COLUMNS))})""",
        [(now, r.mac, r.battery_mv, r.rssi, r.lqi, r.lastseen, r.nextcheckin, r.pending, r.wakeup_reason,
          r.updatecount) for r in history],
    )


def mark_missing(conn: sqlite3.Connection, ap: str, present: set[str], now: float) -> int:
    """After a COMPLETE /get_db: labels of this AP it no longer lists become missing (never deleted)."""
    known = [row[0] for row in conn.execute(
        f"SELECT label FROM {const.TABLE_ESL_LABELS} WHERE ap = ? AND missing_since IS NULL", (ap,))]
    gone = [(now, label) for label in known if label not in present]
    conn.executemany(f"UPDATE {const.TABLE_ESL_LABELS} SET missing_since = ? WHERE label = ?", gone)
    return len(gone)


def load_labels(conn: sqlite3.Connection, ap: str) -> list[TagRecord]:
    """The labels last reported by this AP (missing ones included), for a warm start."""
    rows = conn.execute(
        f"""SELECT label, hw_type, battery_mv, rssi, lqi, temperature, lastseen, nextcheckin, pending,
                   wakeup_reason, capabilities, updatecount, updatelast, hash, version, channel
            FROM {const.TABLE_ESL_LABELS} WHERE ap = ?""", (ap,)).fetchall()
    return [TagRecord(*row) for row in rows]


def missing_labels(conn: sqlite3.Connection, ap: str) -> set[str]:
    """Labels the AP no longer lists."""
    return {row[0] for row in conn.execute(
        f"SELECT label FROM {const.TABLE_ESL_LABELS} WHERE ap = ? AND missing_since IS NOT NULL", (ap,))}


# -- bindings and items ----------------------------------------------------------------------------------------


def bind(conn: sqlite3.Connection, label: str, gtin: str, source: str, now: float) -> str | None:
    """Bind a label to a GTIN (a label shows one product); returns the GTIN it was bound to before, if any."""
    row = conn.execute(f"SELECT gtin FROM {const.TABLE_ESL_BINDINGS} WHERE label = ?", (label,)).fetchone()
    conn.execute(
        f"""INSERT INTO {const.TABLE_ESL_BINDINGS} (label, gtin, bound_at, source) VALUES (?, ?, ?, ?)
            ON CONFLICT(label) DO UPDATE SET gtin = excluded.gtin, bound_at = excluded.bound_at,
            source = excluded.source""",
        (label, gtin, now, source),
    )
    return row[0] if row is not None and row[0] != gtin else None


def labels_for(conn: sqlite3.Connection, gtins: Sequence[str]) -> dict[str, list[str]]:
    """Labels bound to each GTIN (GTINs without labels map to an empty list)."""
    found: dict[str, list[str]] = {gtin: [] for gtin in gtins}
    for start in range(0, len(gtins), 500):
        chunk = gtins[start:start + 500]
        rows = conn.execute(
            f"""SELECT gtin, label FROM {const.TABLE_ESL_BINDINGS} WHERE gtin IN ({", ".join("?" * len(chunk))})
                ORDER BY label""", chunk)
        for gtin, label in rows:
            found[gtin].append(label)
    return found


def save_item(conn: sqlite3.Connection, gtin: str, item_json: str, valid_from: float | None,
              command_id: str | None, now: float) -> None:
    """Remember an item's latest price content (what a newly bound label shows)."""
    conn.execute(
        f"""INSERT INTO {const.TABLE_ESL_ITEMS} (gtin, item_json, valid_from, command_id, received_at)
            VALUES (?, ?, ?, ?, ?) ON CONFLICT(gtin) DO UPDATE SET item_json = excluded.item_json,
            valid_from = excluded.valid_from, command_id = excluded.command_id, received_at = excluded.received_at""",
        (gtin, item_json, valid_from, command_id, now),
    )


def item(conn: sqlite3.Connection, gtin: str) -> tuple[str, float | None] | None:
    """An item's content JSON and valid-from, if a price for it was ever received."""
    row = conn.execute(f"SELECT item_json, valid_from FROM {const.TABLE_ESL_ITEMS} WHERE gtin = ?",
                       (gtin,)).fetchone()
    return None if row is None else (row[0], row[1])


def items(conn: sqlite3.Connection, gtins: Iterable[str]) -> dict[str, str]:
    """Content JSON of the given GTINs that have one."""
    wanted = list(set(gtins))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(conn.execute(
            f"SELECT gtin, item_json FROM {const.TABLE_ESL_ITEMS} WHERE gtin IN ({', '.join('?' * len(chunk))})",
            chunk).fetchall())
    return found


# -- label updates ---------------------------------------------------------------------------------------------


def create_updates(conn: sqlite3.Connection, wanted: Sequence[tuple[str, str, float]], command_id: str | None,
                   now: float) -> list[LabelUpdate]:
    """Queue one update per (label, gtin, due_at); an older open update of the same label is superseded."""
    superseded = f"superseded by command {command_id}" if command_id else "superseded by a newer update"
    created = []
    for label, gtin, due_at in wanted:
        conn.execute(
            f"""UPDATE {const.TABLE_ESL_UPDATES} SET state = 'failed', reason = ?, finished_at = ?
                WHERE label = ? AND state IN ({", ".join("?" * len(OPEN_STATES))})""",
            (superseded, now, label, *OPEN_STATES),
        )
        cursor = conn.execute(
            f"""INSERT INTO {const.TABLE_ESL_UPDATES} (command_id, label, gtin, state, due_at, created_at)
                VALUES (?, ?, ?, 'queued', ?, ?)""", (command_id, label, gtin, due_at, now))
        assert cursor.lastrowid is not None
        created.append(LabelUpdate(id=cursor.lastrowid, label=label, gtin=gtin, command_id=command_id,
                                   due_at=due_at))
    return created


def save_update_states(conn: sqlite3.Connection, updates: Iterable[tuple[LabelUpdate, float | None]]) -> None:
    """Write the current state of updates (``finished_at`` set for a final state)."""
    conn.executemany(
        f"""UPDATE {const.TABLE_ESL_UPDATES} SET state = ?, reason = ?, attempts = ?, content_hash = ?,
            sent_at = ?, updatecount_before = ?, finished_at = ? WHERE id = ?""",
        [(u.state, u.reason, u.attempts, u.content_hash, u.sent_at, u.updatecount_before, finished, u.id)
         for u, finished in updates],
    )


def open_updates(conn: sqlite3.Connection) -> list[LabelUpdate]:
    """Updates not yet confirmed or failed, to resume after a restart."""
    rows = conn.execute(
        f"""SELECT id, label, gtin, command_id, due_at, state, reason, attempts, content_hash, sent_at,
                   updatecount_before
            FROM {const.TABLE_ESL_UPDATES} WHERE state IN ({", ".join("?" * len(OPEN_STATES))}) ORDER BY id""",
        OPEN_STATES).fetchall()
    return [LabelUpdate(id=r[0], label=r[1], gtin=r[2], command_id=r[3], due_at=r[4], state=r[5], reason=r[6],
                        attempts=r[7], content_hash=r[8], sent_at=r[9], updatecount_before=r[10]) for r in rows]


def shown_content(conn: sqlite3.Connection) -> dict[str, str]:
    """Per label, the content hash of its latest confirmed update (what it shows, as far as the gateway knows)."""
    return dict(conn.execute(
        f"""SELECT label, content_hash FROM {const.TABLE_ESL_UPDATES} AS u
            WHERE state = 'confirmed' AND content_hash IS NOT NULL AND id = (
                SELECT max(id) FROM {const.TABLE_ESL_UPDATES} WHERE label = u.label AND state = 'confirmed')"""
    ).fetchall())


# -- technician requests (CLI → daemon) ------------------------------------------------------------------------


def new_requests(conn: sqlite3.Connection, device: str) -> list[tuple[int, str, dict[str, Any]]]:
    """Requests waiting for this AP's driver (or for any ESL driver), oldest first; claimed in the same step."""
    rows = conn.execute(
        f"""SELECT id, kind, args_json FROM {const.TABLE_ESL_REQUESTS}
            WHERE state = 'new' AND (device IS NULL OR device = ?) ORDER BY id""", (device,)).fetchall()
    conn.executemany(f"UPDATE {const.TABLE_ESL_REQUESTS} SET state = 'running' WHERE id = ?",
                     [(row[0],) for row in rows])
    return [(row[0], row[1], json.loads(row[2])) for row in rows]


def finish_request(conn: sqlite3.Connection, *, request_id: int, state: str, result: dict[str, Any],
                   now: float) -> None:
    """Store a request's result for the waiting CLI."""
    conn.execute(f"UPDATE {const.TABLE_ESL_REQUESTS} SET state = ?, result_json = ?, finished_at = ? WHERE id = ?",
                 (state, json.dumps(result), now, request_id))


# -- windows for HQ --------------------------------------------------------------------------------------------


def write_window(conn: sqlite3.Connection, *, ap: str, start: float, end: float, ap_state: str,
                 health: dict[str, int], max_failures: int = 200) -> None:
    """One agg_esl row: label health at the window's end, and the updates that finished within it."""
    confirmed, failed = conn.execute(
        f"""SELECT coalesce(sum(state = 'confirmed'), 0), coalesce(sum(state = 'failed'), 0)
            FROM {const.TABLE_ESL_UPDATES} WHERE finished_at >= ? AND finished_at < ?""", (start, end)).fetchone()
    open_count = conn.execute(
        f"SELECT count(*) FROM {const.TABLE_ESL_UPDATES} WHERE state IN ({', '.join('?' * len(OPEN_STATES))})",
        OPEN_STATES).fetchone()[0]
    failures = [
        {"label": label, "gtin": gtin, "command_id": command_id, "reason": reason or "unknown"}
        for label, gtin, command_id, reason in conn.execute(
            f"""SELECT label, gtin, command_id, reason FROM {const.TABLE_ESL_UPDATES}
                WHERE state = 'failed' AND finished_at >= ? AND finished_at < ? ORDER BY id LIMIT ?""",
            (start, end, max_failures))
    ]
    commands = [
        {"command_id": command_id, "confirmed": ok, "failed": bad, "open": still_open}
        for command_id, ok, bad, still_open in conn.execute(
            f"""SELECT command_id, sum(state = 'confirmed'), sum(state = 'failed'),
                       sum(state IN ({", ".join("?" * len(OPEN_STATES))}))
                FROM {const.TABLE_ESL_UPDATES} WHERE command_id IN (
                    SELECT DISTINCT command_id FROM {const.TABLE_ESL_UPDATES}
                    WHERE finished_at >= ? AND finished_at < ? AND command_id IS NOT NULL)
                GROUP BY command_id ORDER BY min(id)""", (*OPEN_STATES, start, end))
    ]
    conn.execute(
        f"""INSERT INTO {const.TABLE_AGG_ESL} (window_start, window_end, ap, ap_state, labels, low_battery,
                timed_out, missing, confirmed, failed, open_updates, failures_json, commands_json)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (start, end, ap, ap_state, health["labels"], health["low_battery"], health["timed_out"], health["missing"],
         confirmed, failed, open_count, json.dumps(failures), json.dumps(commands)),
    )
