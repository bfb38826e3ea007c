"""``edge traffic``, ``edge heatmap`` and ``edge report``: the store's fused foot traffic for managers, read-only.

Closed hours are what the fusion job stored (and HQ received); hours it has not closed yet are computed on the
spot from the same inputs and marked provisional (``*`` in text, ``"final": false`` in JSON).
"""

import os
import sqlite3
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from edge.cli import common
from edge.config.models import EdgeConfig
from edge.footfall import HOUR_S, Setup
from edge.reports import heatmap as heatmaps
from edge.reports.day import DayReport, Line, load_day

LAYERS = ("fused", "camera", "wifi")
LAYER_TITLES = {"fused": "fused (cameras + WiFi)", "camera": "cameras", "wifi": "WiFi phones"}

date_option = click.option("--date", "day", default=None, help="Store-local day, YYYY-MM-DD (default: today)")


def _day(value: str | None, tz: ZoneInfo | None) -> date:
    if value is None:
        return datetime.now(tz).date()
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r}: use YYYY-MM-DD", param_hint="--date") from err


def _open(config_path: Path | None, db_path: Path | None) -> tuple[EdgeConfig, sqlite3.Connection, Path]:
    config = common.load(config_path)
    conn, path = common.open_db(config_path, db_path)
    return config, conn, path


def _load_day(conn: sqlite3.Connection, config: EdgeConfig, day: date, path: Path) -> DayReport:
    try:
        return load_day(conn, config, day)
    except sqlite3.OperationalError as err:
        click.echo(f"error: cannot read traffic from {path}: {err}", err=True)
        sys.exit(2)


@click.command(name="traffic")
@date_option
@common.config_option
@common.db_option
@common.json_option
def traffic(day: str | None, config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """One day's foot traffic per hour: in, out, peak occupancy, visitors, quick visits, passersby, capture rate,
    transactions, conversion, and the day's totals; exits 1 when the day has no traffic data."""
    config, conn, path = _open(config_path, db_path)
    report = _load_day(conn, config, _day(day, ZoneInfo(config.timezone)), path)
    if as_json:
        common.print_json({"store": report.store_id, "date": report.day.isoformat(), "timezone": report.timezone,
                           "final": report.final, "hours": [h.as_json() for h in report.hours],
                           "totals": report.totals.as_json()})
    else:
        click.echo(format_table(report))
    sys.exit(0 if report.hours else 1)


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table_line(line: Line) -> str:
    label = line.label + ("" if line.final else "*")
    return (f"{label:<7} {_cell(line.entries):>6} {_cell(line.exits):>6} {_cell(line.peak_occupancy):>5} "
            f"{_cell(line.visitors, 1):>9} {_cell(line.quick_visits, 1):>6} {_cell(line.passersby, 1):>10} "
            f"{_pct(line.capture_rate):>8} {_cell(line.transactions):>6} {_pct(line.conversion):>11}")


def format_table(report: DayReport) -> str:
    """The traffic table as text."""
    head = f"store {report.store_id}  {report.day.isoformat()} ({report.timezone})"
    if not report.hours:
        return f"{head}\nno traffic data for this day"
    lines = [head, f"{'hour':<7} {'in':>6} {'out':>6} {'peak':>5} {'visitors':>9} {'quick':>6} {'passersby':>10} "
                   f"{'capture':>8} {'trans':>6} {'conversion':>11}"]
    lines += [_table_line(h) for h in report.hours]
    lines.append(_table_line(report.totals))
    lines.append("peak = most people in at once; visitors stayed 5+ min, quick = shorter visits, passersby did not "
                 "come in (people: WiFi scaled by the camera's entries); capture = in / (in + passersby); "
                 "trans = till transactions; conversion = trans / in")
    if not report.final:
        lines.append("* not closed yet: computed from the data so far, may still change")
    return "\n".join(lines)


@click.command(name="report")
@date_option
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (one self-contained file)")
@common.config_option
@common.db_option
@common.json_option
def report(day: str | None, html_path: Path, config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Write the daily report for a store manager: headline numbers, traffic by hour, occupancy, conversion, dwell,
    zones and the fused heatmap, in one self-contained HTML file; exits 1 when the day has no traffic data."""
    from edge.reports import html

    config, conn, path = _open(config_path, db_path)
    day_report = _load_day(conn, config, _day(day, ZoneInfo(config.timezone)), path)
    png = None
    if day_report.heat.any():
        heat = heatmaps.FloorHeat(day_report.heat, 0.0, 0.0, day_report.grid.cell_m, len(day_report.curve),
                                  day_report.start, day_report.end,
                                  views=heatmaps.camera_views(conn, day_report.start, day_report.end))
        title = f"Store {config.store_id} · {day_report.day.isoformat()} · whole day · {LAYER_TITLES['fused']}"
        png = heatmaps.encode_png(heatmaps.render_png(heat, config.floor_plan, title))
    text = html.render(day_report, png, datetime.now(ZoneInfo(config.timezone)))
    html_path.write_text(text, encoding="utf-8")
    if as_json:
        common.print_json({"html": str(html_path), "bytes": len(text.encode("utf-8")), "final": day_report.final,
                           "totals": day_report.totals.as_json()})
    else:
        click.echo(f"wrote {html_path} ({len(text.encode('utf-8')) // 1024} KiB) for {day_report.day.isoformat()}")
    sys.exit(0 if day_report.hours else 1)


@click.command(name="heatmap")
@date_option
@click.option("--hour", type=click.IntRange(0, 23), default=None, help="Only this store-local hour of --date (0-23)")
@click.option("--layer", type=click.Choice(LAYERS), default="fused", show_default=True,
              help="fused (person-seconds, cameras + WiFi), camera (person-seconds the cameras saw) or wifi "
                   "(device-seconds of phones)")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG file to write (default: draw in the terminal)")
@click.option("--since", default="1d", show_default=True,
              help="Without --date/--hour: how far back, 30m, 2h, 7d or an ISO date")
@click.option("--camera", "camera_name", default=None, help="Camera layer: only this camera (default: all, summed)")
@common.config_option
@common.db_option
@common.json_option
def heatmap(day: str | None, hour: int | None, layer: str, png: Path | None, since: str, camera_name: str | None,
            config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Draw where people spent time over the floor plan, to scale (colour = time per cell), zones outlined and
    named, with a legend: as a PNG with --png, else in the terminal; with --json also print the totals per zone."""
    config = None if db_path is not None and config_path is None else common.load(config_path)
    if layer != "camera" and config is None:
        click.echo(f"error: the {layer} layer needs the store config (--config) for the floor plan", err=True)
        sys.exit(2)
    conn, path = common.open_db(config_path, db_path)
    tz = ZoneInfo(config.timezone) if config is not None else None
    if day is not None or hour is not None:
        the_day = _day(day, tz)
        start = datetime.combine(the_day, dtime(hour or 0), tzinfo=tz).timestamp()
        end = start + HOUR_S if hour is not None else \
            datetime.combine(the_day + timedelta(days=1), dtime(0), tzinfo=tz).timestamp()
        period = f"{the_day.isoformat()} · " + (f"{hour:02d}:00-{(hour + 1) % 24:02d}:00" if hour is not None
                                                 else "whole day")
    else:
        start, end = common.since_ts(since), time.time()
        period = ""
    plan = config.floor_plan if config is not None else None
    try:
        if layer == "camera":
            bounds = (0.0, 0.0, plan.width_m, plan.depth_m) if plan is not None else None
            heat = heatmaps.load_camera_heat(conn, start, end, camera_name, bounds)
        elif layer == "wifi":
            assert config is not None
            heat = heatmaps.load_wifi_heat(conn, Setup.from_config(config), start, end)
        else:
            assert config is not None
            heat = heatmaps.load_fused_heat(conn, Setup.from_config(config), start, end)
    except sqlite3.OperationalError as err:
        click.echo(f"error: cannot read the {layer} heatmap from {path} ({err})", err=True)
        sys.exit(2)
    finally:
        conn.close()
    if heat is None:
        click.echo(f"no {layer} heatmap windows in that period in {path}", err=True)
        sys.exit(1)
    if not period:
        first, last = heat.first or start, (heat.last or end) + 60
        fmt = "%Y-%m-%d %H:%M"
        period = f"{datetime.fromtimestamp(first, tz):{fmt}} - {datetime.fromtimestamp(last, tz):{fmt}}"
    store = f"Store {config.store_id} · " if config is not None else ""
    title = f"{store}{period} · {LAYER_TITLES[layer]}" + (f" ({camera_name})" if camera_name else "")
    zones = heatmaps.zone_totals(heat, plan)
    size: list[int] | None = None
    if png is not None:
        import cv2

        image = heatmaps.render_png(heat, plan, title)
        if not cv2.imwrite(str(png), image):
            click.echo(f"error: cannot write {png}", err=True)
            sys.exit(1)
        size = [image.shape[1], image.shape[0]]
    total = round(heat.total, 1)
    if as_json:
        common.print_json({"png": None if png is None else str(png), "layer": layer, "units": heat.units,
                           "start": start, "end": end, "windows": heat.windows, "person_seconds": total,
                           "zones": zones, "size": size})
        return
    if png is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        click.echo(heatmaps.render_text(heat, plan, title, color=color))
    else:
        click.echo(f"wrote {png}: {total:g} {heat.units} over {heat.windows} window(s)")
    for name, seconds in zones.items():
        click.echo(f"  {name:<12} {seconds:>10g} {heat.units}")
