"""Synthetic people-counting videos (top-down and angled) with exact ground truth; see ``render``."""

from simulators.camera.homography import FloorMap, floor_map
from simulators.camera.render import corrupt_video, render
from simulators.camera.scene import CountLine, Scenario, standard_scenarios
from simulators.camera.truth import (
    RULE,
    Crossing,
    GroundTruth,
    Heatmap,
    LineTruth,
    Track,
    line_crossings,
    load_truth,
    simulate,
    truth_path,
)

__all__ = [
    "RULE",
    "CountLine",
    "Crossing",
    "FloorMap",
    "GroundTruth",
    "Heatmap",
    "LineTruth",
    "Scenario",
    "Track",
    "corrupt_video",
    "floor_map",
    "line_crossings",
    "load_truth",
    "render",
    "simulate",
    "standard_scenarios",
    "truth_path",
]
