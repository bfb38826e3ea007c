"""Calibration overlay: count lines with in/out arrows, the ROI and tracks drawn on a frame (pure drawing)."""

import math
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from drivers.camera.config import CountLine

LINE_COLOUR = (0, 255, 255)
IN_COLOUR = (0, 200, 0)
OUT_COLOUR = (0, 0, 230)
ROI_COLOUR = (255, 160, 0)
TRACK_COLOUR = (255, 0, 255)


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x), round(y)


def draw_overlay(
    frame_bgr: npt.NDArray[np.uint8],
    lines: Sequence[CountLine],
    roi: Sequence[tuple[float, float]] | None,
    tracks: Sequence[tuple[int, tuple[float, float]]],
) -> npt.NDArray[np.uint8]:
    """A copy of ``frame_bgr`` with the ROI outline, each line with an ``in`` and an ``out`` arrow, and tracks."""
    image = frame_bgr.copy()
    scale = max(1.0, image.shape[1] / 640.0)
    thickness = max(1, round(2 * scale))
    if roi is not None:
        cv2.polylines(image, [np.round(np.asarray(roi)).astype(np.int32)], True, ROI_COLOUR, thickness)
    for line in lines:
        (x1, y1), (x2, y2) = line.p1, line.p2
        cv2.line(image, _pt(x1, y1), _pt(x2, y2), LINE_COLOUR, thickness)
        length = math.hypot(x2 - x1, y2 - y1)
        # The unit normal towards the positive side, cross(p2 - p1, n) > 0; that side is "in" unless swapped.
        nx, ny = -(y2 - y1) / length, (x2 - x1) / length
        if line.swap:
            nx, ny = -nx, -ny
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        arrow = 30 * scale
        cv2.arrowedLine(image, _pt(mx - nx * arrow, my - ny * arrow), _pt(mx + nx * arrow, my + ny * arrow),
                        IN_COLOUR, thickness, tipLength=0.3)
        cv2.putText(image, f"{line.name} in", _pt(mx + nx * arrow * 1.3, my + ny * arrow * 1.3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, IN_COLOUR, thickness)
        cv2.putText(image, "out", _pt(mx - nx * arrow * 1.6, my - ny * arrow * 1.6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, OUT_COLOUR, thickness)
    for track_id, (x, y) in tracks:
        cv2.circle(image, _pt(x, y), max(3, round(4 * scale)), TRACK_COLOUR, -1)
        cv2.putText(image, str(track_id), _pt(x + 6 * scale, y - 6 * scale), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * scale, TRACK_COLOUR, thickness)
    return image
