"""The daily report for a store manager: one self-contained HTML file (inline CSS and SVG, the heatmap as a data-URI
PNG; no script, no external asset), readable on a phone."""

import base64
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from edge.reports import charts
from edge.reports.day import DayReport, Line

IN, OUT, PEAK, MEAN, BAR = "#2563eb", "#f59e0b", "#dc2626", "#2563eb", "#0d9488"

STYLE = """
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f3f4f6}
main{max-width:900px;margin:0 auto;padding:12px}
h1{font-size:1.35em;margin:.4em 0 .1em}h2{font-size:1.1em;margin:0 0 .5em}
.sub{color:#6b7280;margin:0 0 1em}.note{color:#92400e;background:#fef3c7;padding:.5em .8em;border-radius:6px}
section{background:#fff;border-radius:10px;padding:12px 14px;margin:0 0 12px;box-shadow:0 1px 2px #0001}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(135px,1fr));gap:8px;background:none;box-shadow:none;
padding:0}.card{background:#fff;border-radius:10px;padding:10px 12px;box-shadow:0 1px 2px #0001}
.card b{display:block;font-size:1.5em}.card span{color:#6b7280;font-size:.85em}
.chart{width:100%;height:auto}.grid{stroke:#e5e7eb}.axis{font-size:11px;fill:#6b7280}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{padding:4px 6px;text-align:right;border-bottom:1px solid #e5e7eb;white-space:nowrap}
th:first-child,td:first-child{text-align:left}tr.total td{font-weight:600;border-top:2px solid #9ca3af}
img{max-width:100%;height:auto;display:block}dl{margin:0}dt{font-weight:600}dd{margin:0 0 .5em}
"""


def _n(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _row(line: Line, css: str = "") -> str:
    mark = "" if line.final else " *"
    cells = [line.label + mark, _n(line.entries), _n(line.exits), _n(line.peak_occupancy), _n(line.visitors),
             _n(line.quick_visits), _n(line.passersby), _pct(line.capture_rate), _n(line.transactions),
             _pct(line.conversion)]
    attr = f' class="{css}"' if css else ""
    return f"<tr{attr}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def render(report: DayReport, heat_png: bytes | None, generated: datetime) -> str:
    """The whole report as one HTML document."""
    t = report.totals
    hours = report.hours
    labels = [h.label for h in hours]
    peak_hour = max(hours, key=lambda h: h.peak_occupancy or 0, default=None)
    busiest = report.busiest
    cards = [
        _card(_n(t.came_in), "people came in"),
        _card(_n(t.visitors), "visitors (stayed 5 min or more)"),
        _card(_n(t.passersby), "passersby (did not come in)"),
        _card(_pct(t.capture_rate), "capture rate"),
        _card(_n(t.transactions), "transactions at the tills"),
        _card(_pct(t.conversion), "conversion (transactions ÷ people in)"),
        _card(_n(t.peak_occupancy), "most people in at once" + (f" ({peak_hour.label})" if peak_hour else "")),
        _card(_duration(report.time_in_store_s), "average time in store"),
        _card(busiest.label if busiest else "–", "busiest hour" + (f" ({_n(busiest.came_in)} in)" if busiest else "")),
    ]
    camera = any(h.entries is not None for h in hours)
    traffic = charts.bar_chart(
        "People in and out per hour", labels,
        [charts.Series("in", [h.entries for h in hours], IN), charts.Series("out", [h.exits for h in hours], OUT)]
        if camera else [charts.Series("came in", [h.came_in for h in hours], IN)])
    tz = ZoneInfo(report.timezone)
    curve_labels = [datetime.fromtimestamp(ts, tz).strftime("%H:%M") for ts, _, _ in report.curve]
    occupancy = charts.line_chart(
        "People in the store", curve_labels,
        [charts.Series("average", [m for _, m, _ in report.curve], MEAN),
         charts.Series("most at once", [p for _, _, p in report.curve], PEAK)], fmt=lambda v: f"{v:g}")
    conversion = charts.bar_chart("Conversion per hour", labels,
                                  [charts.Series("conversion", [h.conversion for h in hours], BAR)],
                                  fmt=lambda v: f"{100 * v:.0f}%")
    bins = list(report.dwell_persons)
    dwell = charts.bar_chart("How long visitors stayed (minutes)", bins,
                             [charts.Series("visitors", [report.dwell_persons[b] for b in bins], BAR)],
                             fmt=lambda v: f"{v:g}")
    zones = "".join(f"<tr><td>{escape(z.zone)}</td><td>{_n(z.person_seconds / 3600, 1)}</td><td>{_pct(z.share)}</td>"
                    f"<td>{_n(z.mean_people, 1)}</td></tr>" for z in report.zones)
    image = (f'<img alt="Fused floor heatmap of the day" src="data:image/png;base64,'
             f'{base64.b64encode(heat_png).decode("ascii")}">' if heat_png else "<p>No heatmap data.</p>")
    provisional = "" if report.final else (
        '<p class="note">* Hours marked with a star are not closed yet: their figures may still change.</p>')
    title = f"Store {report.store_id} · {report.day:%A %d %B %Y}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body><main>
<h1>{escape(title)}</h1>
<p class="sub">Daily report · times in {escape(report.timezone)} · made {generated:%Y-%m-%d %H:%M}</p>
{provisional}
<section class="cards">{"".join(cards)}</section>
<section><h2>Traffic by hour</h2>{traffic}</section>
<section><h2>People in the store</h2>{occupancy}</section>
<section><h2>Conversion by hour</h2>{conversion}</section>
<section><h2>How long visitors stayed</h2>{dwell}
<p class="sub">Average stay of the visitors measured by WiFi: {_duration(report.mean_dwell_s)}.</p></section>
<section><h2>Where people spent time</h2>{image}
<div class="scroll"><table><tr><th>zone</th><th>person-hours</th><th>share</th><th>people on average</th></tr>
{zones}</table></div></section>
<section><h2>Hour by hour</h2><div class="scroll"><table>
<tr><th>hour</th><th>in</th><th>out</th><th>peak</th><th>visitors</th><th>quick</th><th>passersby</th>
<th>capture</th><th>transactions</th><th>conversion</th></tr>
{"".join(_row(h) for h in hours)}{_row(t, "total")}</table></div></section>
<section><h2>Reading this report</h2><dl>
<dt>In and out</dt><dd>People counted by the entrance camera walking in and out.</dd>
<dt>Visitors, quick visits, passersby</dt><dd>Estimated from the phones the WiFi sensors heard, scaled to people
by the camera's count: visitors stayed 5 minutes or more, quick visits less, passersby walked past without coming
in. Capture rate = people in ÷ (people in + passersby).</dd>
<dt>Conversion</dt><dd>Till transactions (a burst of scans at a till) ÷ people who came in.</dd>
<dt>Heatmap and zones</dt><dd>Person-time on the floor: exact where the camera sees (dashed), placed by WiFi
elsewhere. Person-hours add up the time every person spent in a zone.</dd>
</dl></section>
</main></body></html>
"""
