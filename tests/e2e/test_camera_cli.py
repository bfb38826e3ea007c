"""End to end: `edge camera count` against the simulator's ground truth, and the real daemon counting a video file
into the store, then `edge heatmap --layer camera` drawing it over the floor plan."""

import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulators.camera import CountLine, GroundTruth, Scenario, render
from tests.e2e.conftest import Daemon, edge_command, wait_for

DOOR = CountLine("door", 24, 240, 616, 240)
CLIP = Scenario(name="cli_clip", lines=(DOOR,), duration_s=45, seed=21, walkers=24, groups=2, turn_backs=2,
                loiterers=2, lights_on_s=20)


@pytest.fixture(scope="session")
def cli_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    video = tmp_path_factory.mktemp("camera-cli") / "cli_clip.avi"
    return video, render(CLIP, video)


def test_camera_count__matches_the_ground_truth(cli_clip: tuple[Path, GroundTruth]) -> None:
    video, truth = cli_clip
    out = subprocess.run(edge_command("camera", "count", str(video), "--line", "24,240,616,240", "--json"),
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["frames"] == truth.frames and report["decode_errors"] == 0
    (line,) = report["lines"]
    for direction in ("in", "out"):
        true = truth.line("door").count(direction)  # type: ignore[arg-type]
        assert true >= 8
        # The bar is 98 % per direction over ≥ 20 crossings; on one short clip that allows one miss.
        assert abs(line[direction] - true) <= max(1, round(0.02 * true)), (direction, line, true)


def test_camera_count__a_corrupt_video_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00garbage" * 1000)
    out = subprocess.run(edge_command("camera", "count", str(bad), "--line", "0,10,100,10"), capture_output=True,
                         text=True, check=False)
    assert out.returncode == 1 and f"cannot decode {bad}" in out.stderr


FLOOR = """
[floor_plan]
width_m = 12.0
depth_m = 8.0
zones = [
  { name = "entrance", polygon = [[0, 0], [12, 0], [12, 3.5], [0, 3.5]] },
  { name = "inside", polygon = [[0, 3.5], [12, 3.5], [12, 8], [0, 8]] },
]
"""


def test_daemon_counts_a_video_and_heatmap_draws_it(cli_clip: tuple[Path, GroundTruth],
                                                    daemon: Callable[[str], Daemon], tmp_path: Path) -> None:
    video, truth = cli_clip
    instance = daemon(FLOOR + f"""
[[devices]]
type = "camera"
name = "door-cam"
source = "{video}"
calibration = "entrance-topdown.toml"
person_size_px = [48, 30]
process_fps = 12
process_width = 640
run_in_process = true
lines = [{{ name = "door", p1 = [24, 240], p2 = [616, 240], band_px = 22 }}]
""")
    instance.start()
    try:
        wait_for(lambda: instance.device("door-cam").get("details", {}).get("replay") == "finished",  # type: ignore[union-attr]
                 timeout=40, what="the camera to finish its video")
    finally:
        assert instance.stop() == 0
    with sqlite3.connect(instance.db) as conn:
        counted = conn.execute("SELECT sum(in_count), sum(out_count) FROM agg_traffic").fetchone()
        heat_rows = conn.execute("SELECT count(*), sum(person_seconds) FROM agg_camera_heatmap").fetchone()
    true_in, true_out = truth.line("door").count("in"), truth.line("door").count("out")
    assert abs(counted[0] - true_in) <= 1 and abs(counted[1] - true_out) <= 1
    assert heat_rows[0] >= 1 and heat_rows[1] > 0
    png = tmp_path / "heat.png"
    out = subprocess.run(edge_command("heatmap", "--layer", "camera", "--png", str(png), "--config",
                                      str(instance.config), "--since", "3650d", "--json"),
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert set(report["zones"]) == {"entrance", "inside"}
    assert report["person_seconds"] == pytest.approx(heat_rows[1], rel=0.01)
    assert sum(report["zones"].values()) == pytest.approx(report["person_seconds"], rel=0.01)
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] >= 400 and image.shape[0] >= 250
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20, "a colour map, not a blank image"
