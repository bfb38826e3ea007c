"""Image-to-floor mapping of the simulated views: a scaled top-down view or a real perspective."""

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

from simulators.camera.scene import ViewKind

Point = tuple[float, float]
Array = npt.NDArray[np.float64]

TOP_DOWN_WIDTH_M = 8.0  # floor width seen across the image by the ceiling camera
TOP_DOWN_ORIGIN_M = (1.0, 0.5)  # floor coordinates of the image's top-left corner
# Angled view: image corners (fractions of width/height) -> floor metres; the floor fills the frame and the
# horizon lies one image height above the top edge, so far people are about half the size of near ones.
ANGLED_PAIRS = (((0.0, 1.0), (4.5, 3.0)), ((1.0, 1.0), (11.5, 3.0)), ((1.0, 0.0), (15.0, 13.0)),
                ((0.0, 0.0), (1.0, 13.0)))


@dataclass(frozen=True)
class FloorMap:
    """Image <-> floor point pairs (pixels <-> metres) and the homography they define."""

    image_points: tuple[Point, ...]
    floor_points: tuple[Point, ...]

    @cached_property
    def image_to_floor(self) -> Array:
        """The 3x3 homography from image pixels to floor metres."""
        matrix, _ = cv2.findHomography(np.array(self.image_points), np.array(self.floor_points), 0)
        return np.asarray(matrix, dtype=np.float64)

    @cached_property
    def floor_to_image(self) -> Array:
        """The 3x3 homography from floor metres to image pixels."""
        return np.asarray(np.linalg.inv(self.image_to_floor), dtype=np.float64)

    def to_floor(self, points: npt.ArrayLike) -> Array:
        """Map (n, 2) image points to floor metres."""
        return _apply(self.image_to_floor, points)

    def to_image(self, points: npt.ArrayLike) -> Array:
        """Map (n, 2) floor points to image pixels."""
        return _apply(self.floor_to_image, points)

    def px_per_m(self, floor: npt.ArrayLike, direction: npt.ArrayLike) -> Array:
        """Image pixels per floor metre at each (n, 2) floor point along a floor direction."""
        pts = np.atleast_2d(np.asarray(floor, dtype=np.float64))
        step = 0.05 * np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
        return np.asarray(np.linalg.norm(self.to_image(pts + step) - self.to_image(pts - step), axis=1) / 0.1)


def _apply(matrix: Array, points: npt.ArrayLike) -> Array:
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    homog = np.hstack([pts, np.ones((len(pts), 1))]) @ matrix.T
    return np.asarray(homog[:, :2] / homog[:, 2:3])


def floor_map(kind: ViewKind, size: tuple[int, int]) -> FloorMap:
    """The floor mapping used to render a view of this kind and size, as six point pairs."""
    w, h = size
    if kind == "top-down":
        scale = w / TOP_DOWN_WIDTH_M
        ox, oy = TOP_DOWN_ORIGIN_M
        image = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h), (w / 2, h / 2), (w / 4, 3 * h / 4)]
        return FloorMap(tuple(image), tuple((x / scale + ox, y / scale + oy) for x, y in image))
    src = np.array([(fx * w, fy * h) for (fx, fy), _ in ANGLED_PAIRS], dtype=np.float32)
    dst = np.array([floor for _, floor in ANGLED_PAIRS], dtype=np.float32)
    matrix = np.asarray(cv2.getPerspectiveTransform(src, dst), dtype=np.float64)
    image = [(float(x), float(y)) for x, y in src] + [(w / 2, h / 2), (w / 4, 3 * h / 4)]
    floor = _apply(matrix, image)
    return FloorMap(tuple((float(x), float(y)) for x, y in image), tuple((float(x), float(y)) for x, y in floor))
