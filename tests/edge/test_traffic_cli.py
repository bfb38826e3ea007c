"""``edge traffic``, ``edge heatmap`` and ``edge report`` on a store the fusion job has filled (read-only CLI)."""

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from edge.analytics import fusion
from edge.cli.main import cli
from edge.footfall import Setup
from edge.fusion_rollup import FusionRollup
from edge.store.db import connect
from tests.edge import fused_store as store
from tests.edge.fused_store import DAY, HOUR, T0

FACTORS = [round(e.factor, 4) for e in fusion.persons_factors(
    [fusion.HourCounts(T0 + i * HOUR, 20, 12) for i in range(4)], Setup.from_config(store.config()).factor)]


@pytest.fixture
def config_file(tmp_path: Path, fresh_db: Path) -> Path:
    """Four hours of store; the fusion job has closed the first three (the fourth is still open)."""
    conn = connect(fresh_db)
    store.fill(conn, hours=4, wifi_extra_s=0)
    assert FusionRollup(store.config()).run(conn, T0 + 3 * HOUR + 5).closed_hours == 3
    conn.close()
    return store.write_config(tmp_path / "store.toml", fresh_db)


def _edge(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_traffic_json__per_hour_and_totals_are_the_fused_numbers(config_file: Path) -> None:
    result = _edge("traffic", "--config", str(config_file), "--date", DAY, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["store"], report["date"], report["final"]) == ("fz-0001", DAY, False)
    hours = report["hours"]
    assert [h["hour"] for h in hours] == ["09:00", "10:00", "11:00", "12:00"]
    assert [h["final"] for h in hours] == [True, True, True, False]
    first = hours[0]
    f = FACTORS[0]
    assert (first["in"], first["out"], first["peak_occupancy"], first["came_in"]) == (20, 20, 1, 20.0)
    # Persons are rounded to 0.01 per window, then summed over the hour's four windows.
    assert first["visitors"] == pytest.approx(20 * 2 / 3, abs=0.1), "entries split by the WiFi visitor share"
    assert first["quick_visits"] == pytest.approx(20 / 3, abs=0.1)
    heard = fusion.detection_share(store.PASSER_BURSTS)
    assert first["passersby"] == pytest.approx(24 * f / heard, abs=0.1)
    assert first["capture_rate"] == pytest.approx(20 / (20 + 24 * f / heard), abs=1e-3)
    assert (first["transactions"], first["conversion"], first["persons_factor"]) == (8, 0.4, f)
    assert first["person_seconds"] == 4 * 300 + 30
    assert [h["persons_factor"] for h in hours] == FACTORS
    totals = report["totals"]
    assert (totals["in"], totals["out"], totals["transactions"], totals["conversion"]) == (80, 80, 32, 0.4)
    assert totals["passersby"] == pytest.approx(sum(24 * x / heard for x in FACTORS), abs=0.2)
    assert totals["final"] is False


def test_traffic_text__a_table_with_totals_and_open_hours_marked(config_file: Path) -> None:
    result = _edge("traffic", "--config", str(config_file), "--date", DAY)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "store fz-0001  2026-03-02 (UTC)"
    assert re.match(r"^09:00\s+20\s+20\s+1\s", lines[2])
    assert lines[5].startswith("12:00*") and lines[6].startswith("total*")
    assert re.search(r"\s80\s+80\s+1\s.*\s32\s+40\.0%$", lines[6])
    assert "not closed yet" in result.output


def test_traffic__a_day_without_data_exits_1(config_file: Path) -> None:
    result = _edge("traffic", "--config", str(config_file), "--date", "2026-03-05", "--json")
    assert result.exit_code == 1 and json.loads(result.output)["hours"] == []


def test_heatmap_png__the_fused_floor_to_scale_with_zone_totals(config_file: Path, tmp_path: Path) -> None:
    png = tmp_path / "fused.png"
    result = _edge("heatmap", "--config", str(config_file), "--date", DAY, "--png", str(png), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    total = 16 * 300 + 30  # 16 windows, the first one starting from its own occupancy
    assert (report["layer"], report["units"], report["windows"]) == ("fused", "person-seconds", 16)
    assert report["person_seconds"] == total
    assert report["zones"] == {"front": 16 * 60.0, "back": total - 16 * 60.0}
    image = cv2.imread(str(png))
    assert image is not None and [image.shape[1], image.shape[0]] == report["size"]
    # 10 m × 6 m at 60 px/m: a 600 × 360 floor plus margins and the legend.
    assert image.shape[1] == 600 + 40 + 190 and image.shape[0] > 360
    floor = image[-360 - 60:-60, 20:620].reshape(-1, 3)
    grey = np.all(floor == (235, 235, 235), axis=1)
    assert 0 < (~grey).sum() < floor.shape[0], "some cells coloured, most nobody"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50, "a colour legend, not a blank image"
    hour = json.loads(_edge("heatmap", "--config", str(config_file), "--date", DAY, "--hour", "10", "--png",
                            str(tmp_path / "h.png"), "--json").output)
    assert (hour["person_seconds"], hour["windows"]) == (4 * 300, 4)


def test_heatmap__camera_and_wifi_layers(config_file: Path, tmp_path: Path) -> None:
    camera = json.loads(_edge("heatmap", "--config", str(config_file), "--date", DAY, "--layer", "camera", "--png",
                              str(tmp_path / "c.png"), "--json").output)
    assert camera["zones"] == {"front": 4 * 60 * 4.0, "back": 0.0} and camera["units"] == "person-seconds"
    wifi = json.loads(_edge("heatmap", "--config", str(config_file), "--date", DAY, "--layer", "wifi",
                            "--json").output)
    assert wifi["zones"] == {"front": 0.0, "back": 4 * 60 * 10.0} and wifi["units"] == "device-seconds"
    assert wifi["png"] is None


def test_heatmap__camera_layer_from_the_database_alone_still_works(config_file: Path, fresh_db: Path,
                                                                   tmp_path: Path) -> None:
    png = tmp_path / "cam.png"
    result = _edge("heatmap", "--layer", "camera", "--db", str(fresh_db), "--since", "3650d", "--png", str(png),
                   "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["person_seconds"] == 4 * 60 * 4.0 and report["zones"] == {}
    assert cv2.imread(str(png)) is not None
    fused = _edge("heatmap", "--db", str(fresh_db), "--date", DAY)
    assert fused.exit_code == 2, "the fused layer needs the floor plan"


def test_heatmap_terminal__shades_zone_names_and_a_legend(config_file: Path) -> None:
    result = _edge("heatmap", "--config", str(config_file), "--date", DAY)
    assert result.exit_code == 0
    text = result.output
    assert "[front]" in text and "[back]" in text and "\x1b[" not in text, "no colour when not a terminal"
    assert "scale:" in text and "person-seconds per 0.5 m cell" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 12 and all(len(row) == 2 + 40 for row in rows), "6 m deep, 10 m wide at 0.5 m, 2 chars"
    assert "@@" in text, "the busiest cell at the top of the scale"
    assert re.search(r"front\s+960 person-seconds", text) and re.search(r"back\s+3870 person-seconds", text)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_html__one_self_contained_file_with_the_numbers(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.html"
    result = _edge("report", "--config", str(config_file), "--date", DAY, "--html", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["in"] == 80
    text = out.read_text(encoding="utf-8")
    assert 'src="http' not in text and "<script" not in text and "<link" not in text and "url(" not in text
    parser = _Tags()
    parser.feed(text)
    names = [tag for tag, _ in parser.tags]
    assert names.count("svg") == 4 and "table" in names
    assert any(tag == "meta" and attrs.get("name") == "viewport" for tag, attrs in parser.tags)
    sources = [attrs["src"] for tag, attrs in parser.tags if "src" in attrs and attrs["src"] is not None]
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    image = cv2.imdecode(np.frombuffer(base64.b64decode(sources[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] == 830
    words = " ".join(parser.text)
    for expected in ("Store fz-0001", "Monday 02 March 2026", "80", "40.0%", "front", "back", "12:00 *"):
        assert expected in words, expected
    assert "not closed yet" in words


def test_heatmap_colour_top__a_few_hot_cells_do_not_flatten_the_rest_of_the_floor() -> None:
    from edge.reports.heatmap import colour_top

    floor = np.linspace(1.0, 100.0, 400).reshape(20, 20)
    assert colour_top(floor) == (100.0, False)
    with_tills = floor.copy()
    with_tills[3, 4] = with_tills[3, 7] = 5000.0  # two tills
    top, clipped = colour_top(with_tills)
    assert clipped and top == pytest.approx(np.percentile(with_tills, 99))
    assert colour_top(np.zeros((3, 3))) == (0.0, False)
