"""``edge esl ...``: shelf labels for a technician — list them, see pending updates, bind a label, push a price.

``labels`` and ``pending`` read the database like ``edge status``. ``bind`` and ``push`` are requests to the
running daemon (the one process that talks to the access point, so uploads stay single-flight): the CLI writes
the request to the database, the ESL driver picks it up within a second and stores its result, which the CLI
prints. Run them as the service user (``sudo -u storeedge edge esl bind ...``), who may write the database.
"""

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import click

from drivers.esl.config import EslConfig
from drivers.esl.protocol import OPEN_STATES, TagRecord, is_low_battery, is_timed_out, normalize_mac
from edge import const
from edge.cli import common
from edge.errors import StoreError
from edge.store.db import connect

DEFAULT_ESL = EslConfig(name="esl", type="esl", url="http://ap.invalid")  # type: ignore[arg-type]


@click.group()
def esl() -> None:
    """Electronic shelf labels: health, pending updates, binding labels to products, local price pushes."""


def _esl_config(config_path: Path | None) -> EslConfig:
    """The first ESL device of the store config (its thresholds), or the defaults without a config."""
    try:
        config = common.load(config_path) if config_path or common.config_file(None).exists() else None
    except SystemExit:
        config = None
    devices = [d for d in config.enabled_devices() if isinstance(d, EslConfig)] if config else []
    return devices[0] if devices else DEFAULT_ESL


_LABEL_SQL = f"""
    SELECT l.label, l.ap, l.hw_type, l.battery_mv, l.rssi, l.lqi, l.temperature, l.lastseen, l.nextcheckin,
           l.pending, l.wakeup_reason, l.capabilities, l.updatecount, l.updatelast, l.hash, l.version, l.channel,
           l.missing_since, b.gtin,
           (SELECT state FROM {const.TABLE_ESL_UPDATES} u WHERE u.label = l.label ORDER BY id DESC LIMIT 1)
    FROM {const.TABLE_ESL_LABELS} l LEFT JOIN {const.TABLE_ESL_BINDINGS} b ON b.label = l.label ORDER BY l.label"""


@esl.command()
@common.config_option
@common.db_option
@click.option("--low-battery", is_flag=True, help="Only labels with a low battery")
@click.option("--offline", is_flag=True, help="Only labels that timed out (the AP's rule) or the AP stopped listing")
@click.option("--pending", "only_pending", is_flag=True, help="Only labels with content waiting on the AP")
@common.json_option
def labels(config_path: Path | None, db_path: Path | None, low_battery: bool, offline: bool, only_pending: bool,
           as_json: bool) -> None:
    """Every label the access point reported: battery, signal, last check-in, product, last update's state."""
    conn, _ = common.open_db(config_path, db_path)
    cfg, now = _esl_config(config_path), time.time()
    rows = []
    for row in conn.execute(_LABEL_SQL):
        record = TagRecord(row[0], *row[2:17])
        missing_since, gtin, update_state = row[17], row[18], row[19]
        low = is_low_battery(record.battery_mv, cfg.low_battery_mv)
        timed_out = missing_since is not None or is_timed_out(record, now, cfg.maxsleep_min, cfg.checkin_grace_s)
        if (low_battery and not low) or (offline and not timed_out) or (only_pending and not record.pending):
            continue
        rows.append({"label": record.mac, "ap": row[1], "hw_type": f"{record.hw_type:02X}", "gtin": gtin,
                     "battery_mv": record.battery_mv, "low_battery": low, "rssi": record.rssi, "lqi": record.lqi,
                     "lastseen": record.lastseen, "offline": timed_out, "missing": missing_since is not None,
                     "pending": record.pending, "updatecount": record.updatecount, "last_update": update_state})
    if as_json:
        common.print_json({"labels": rows, "count": len(rows)})
        return
    click.echo(f"{'LABEL':<17} {'HW':<3} {'GTIN':<15} {'BATT mV':>8} {'RSSI':>5} {'SEEN':>6} {'PEND':>4}  STATE")
    for r in rows:
        flags = [name for name in ("low_battery", "offline", "missing") if r[name]]
        seen = common.age(now - r["lastseen"]) if r["lastseen"] else "-"
        click.echo(f"{r['label']:<17} {r['hw_type']:<3} {r['gtin'] or '-':<15} {r['battery_mv'] or '-':>8} "
                   f"{r['rssi'] if r['rssi'] is not None else '-':>5} {seen:>6} {r['pending']:>4}  "
                   f"{r['last_update'] or '-'}{'  [' + ', '.join(flags) + ']' if flags else ''}")
    click.echo(f"{len(rows)} label(s)")


@esl.command()
@common.config_option
@common.db_option
@common.json_option
def pending(config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Label updates not yet confirmed or failed: queued, sent to the AP, or pending on the label."""
    conn, _ = common.open_db(config_path, db_path)
    now = time.time()
    rows = [dict(zip(("id", "label", "gtin", "state", "attempts", "due_at", "sent_at", "command_id"), row,
                     strict=True))
            for row in conn.execute(
                f"""SELECT id, label, gtin, state, attempts, due_at, sent_at, command_id
                    FROM {const.TABLE_ESL_UPDATES} WHERE state IN ({", ".join("?" * len(OPEN_STATES))})
                    ORDER BY due_at, id""", OPEN_STATES)]
    if as_json:
        common.print_json({"pending": rows, "count": len(rows)})
        return
    click.echo(f"{'ID':>7} {'LABEL':<17} {'GTIN':<15} {'STATE':<8} {'TRIES':>5} {'DUE':>8}  COMMAND")
    for r in rows:
        due = f"in {common.age(r['due_at'] - now)}" if r["due_at"] > now else common.age(now - r["due_at"])
        click.echo(f"{r['id']:>7} {r['label']:<17} {r['gtin']:<15} {r['state']:<8} {r['attempts']:>5} {due:>8}  "
                   f"{r['command_id'] or '-'}")
    click.echo(f"{len(rows)} open update(s)")


def _request(config_path: Path | None, db_path: Path | None, kind: str, args: dict[str, Any],
             device: str | None, timeout_s: float) -> dict[str, Any]:
    """Hand a request to the running daemon and wait for its result; exit 1 when it is rejected or not taken."""
    path = db_path if db_path is not None else common.load(config_path).storage.path
    if not path.exists():
        click.echo(f"error: no database at {path}; is the daemon installed?", err=True)
        sys.exit(2)
    try:
        conn = connect(path)
        request_id = conn.execute(
            f"""INSERT INTO {const.TABLE_ESL_REQUESTS} (device, kind, args_json, created_at)
                VALUES (?, ?, ?, ?)""", (device, kind, json.dumps(args), time.time())).lastrowid
    except (StoreError, sqlite3.Error) as err:
        click.echo(f"error: cannot write the request ({err}); run as the service user, e.g. sudo -u storeedge",
                   err=True)
        sys.exit(2)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state, result = conn.execute(f"SELECT state, result_json FROM {const.TABLE_ESL_REQUESTS} WHERE id = ?",
                                     (request_id,)).fetchone()
        if state not in ("new", "running"):
            answer: dict[str, Any] = json.loads(result or "{}")
            if state != "done":
                click.echo(f"{kind} {state}: {answer.get('reason', 'no reason given')}", err=True)
                sys.exit(1)
            return answer
        time.sleep(0.2)
    conn.execute(f"UPDATE {const.TABLE_ESL_REQUESTS} SET state = 'cancelled' WHERE id = ? AND state = 'new'",
                 (request_id,))
    click.echo(f"error: the daemon did not answer within {timeout_s:.0f} s; is store-edge running with an ESL "
               "device?", err=True)
    sys.exit(1)


device_option = click.option("--device", default=None, help="ESL device name (default: any ESL device)")
timeout_option = click.option("--timeout", "timeout_s", default=30.0, show_default=True,
                              type=click.FloatRange(1, 600), help="Seconds to wait for the daemon")


@esl.command()
@click.argument("label")
@click.argument("gtin")
@common.config_option
@common.db_option
@device_option
@timeout_option
@common.json_option
def bind(label: str, gtin: str, config_path: Path | None, db_path: Path | None, device: str | None,
         timeout_s: float, as_json: bool) -> None:
    """Bind LABEL (its barcode: 12 or 16 hex digits) to product GTIN; the label flashes and shows the price."""
    from drivers.barcode.gs1 import check_digit_error, to_gtin14

    if normalize_mac(label) is None:
        raise click.BadParameter(f"{label!r} is not a label id (12 or 16 hex digits)", param_hint="LABEL")
    if not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14) or check_digit_error(gtin):
        raise click.BadParameter(f"{gtin!r} is not a valid GTIN (8, 12, 13 or 14 digits with check digit)",
                                 param_hint="GTIN")
    answer = _request(config_path, db_path, "bind", {"label": label, "gtin": to_gtin14(gtin)}, device, timeout_s)
    if as_json:
        common.print_json(answer)
        return
    click.echo(f"label {answer['label']} → GTIN {answer['gtin']}"
               f"{' (was ' + answer['previous_gtin'] + ')' if answer.get('previous_gtin') else ''}; "
               f"LED {'flashed' if answer.get('led_flashed') else 'not flashed'}; content {answer.get('content')}")


@esl.command()
@click.argument("gtin")
@click.option("--price", required=True, help="Price, e.g. 2.49")
@click.option("--promo", "promo_price", default=None, help="Promotion price, lower than --price")
@click.option("--unit-price", default=None, help="Unit price as VALUE/UNIT, e.g. 12.45/kg")
@click.option("--currency", default="EUR", show_default=True, help="ISO 4217 currency code")
@click.option("--name", default=None, help="Product name shown on the label")
@click.option("--valid-from", default=None, help="ISO date-time with offset; the labels change then")
@common.config_option
@common.db_option
@device_option
@timeout_option
@common.json_option
def push(gtin: str, price: str, promo_price: str | None, unit_price: str | None, currency: str, name: str | None,
         valid_from: str | None, config_path: Path | None, db_path: Path | None, device: str | None,
         timeout_s: float, as_json: bool) -> None:
    """Push a price for GTIN to every label bound to it (what HQ's esl/update does, for one product)."""
    item: dict[str, Any] = {"gtin": gtin, "price": price, "currency": currency}
    if promo_price is not None:
        item["promo_price"] = promo_price
    if unit_price is not None:
        value, _, unit = unit_price.partition("/")
        item["unit_price"] = {"value": value, "unit": unit}
    if name is not None:
        item["name"] = name
    if valid_from is not None:
        item["valid_from"] = valid_from
    answer = _request(config_path, db_path, "push", {"items": [item]}, device, timeout_s)
    if as_json:
        common.print_json(answer)
        return
    when = f", {answer['scheduled']} scheduled for later" if answer.get("scheduled") else ""
    click.echo(f"{answer['labels_queued']} label(s) queued{when}"
               f"{'; no label is bound to this GTIN' if answer.get('unbound') else ''}")
