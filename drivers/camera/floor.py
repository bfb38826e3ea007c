"""Floor mapping: image→floor homography, a person-seconds heatmap grid, and zone membership (point in polygon)."""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Point = tuple[float, float]


class Homography:
    """A planar mapping from source-image pixels to floor metres, fitted to 4+ point pairs."""

    def __init__(self, matrix: F64) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float64)
        self.inverse: F64 = np.asarray(np.linalg.inv(self.matrix), dtype=np.float64)

    @classmethod
    def fit(cls, image_points: Sequence[Point], floor_points: Sequence[Point]) -> "Homography":
        """Least-squares fit (all points used) of image→floor; ``ValueError`` if the points are degenerate."""
        src = np.asarray(image_points, dtype=np.float64).reshape(-1, 2)
        dst = np.asarray(floor_points, dtype=np.float64).reshape(-1, 2)
        if len(src) < 4 or len(src) != len(dst):
            raise ValueError("a homography needs at least 4 image↔floor point pairs")
        matrix, _ = cv2.findHomography(src, dst, 0)
        if matrix is None or not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-12:
            raise ValueError("the point pairs are degenerate (three or more on one line?)")
        return cls(np.asarray(matrix, dtype=np.float64))

    @staticmethod
    def _apply(matrix: F64, points: npt.ArrayLike) -> F64:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        homogeneous = np.hstack([pts, np.ones((len(pts), 1))]) @ matrix.T
        return homogeneous[:, :2] / homogeneous[:, 2:3]

    def to_floor(self, points: npt.ArrayLike) -> F64:
        """Image pixels (N×2) → floor metres (N×2)."""
        return self._apply(self.matrix, points)

    def to_image(self, points: npt.ArrayLike) -> F64:
        """Floor metres (N×2) → image pixels (N×2)."""
        return self._apply(self.inverse, points)

    def reprojection_error_m(self, image_points: Sequence[Point], floor_points: Sequence[Point]) -> float:
        """Largest distance in metres between mapped image points and their floor points."""
        mapped = self.to_floor(image_points)
        return float(np.max(np.hypot(*(mapped - np.asarray(floor_points, dtype=np.float64)).T)))


@dataclass(frozen=True, slots=True)
class GridSpec:
    """A heatmap grid on the floor: origin (metres) of cell (0, 0)'s corner, cell size, columns and rows."""

    origin_x: float
    origin_y: float
    cell_m: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, x0: float, y0: float, x1: float, y1: float, cell_m: float) -> "GridSpec":
        """The smallest grid of whole cells, aligned to multiples of ``cell_m``, covering the rectangle."""
        gx0 = np.floor(x0 / cell_m + 1e-9) * cell_m
        gy0 = np.floor(y0 / cell_m + 1e-9) * cell_m
        nx = max(1, int(np.ceil((x1 - gx0) / cell_m - 1e-9)))
        ny = max(1, int(np.ceil((y1 - gy0) / cell_m - 1e-9)))
        return cls(float(gx0), float(gy0), cell_m, nx, ny)

    def cell_indices(self, points: F64) -> npt.NDArray[np.intp]:
        """Flat cell index (row-major, ``iy * nx + ix``) of each floor point; −1 outside the grid."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ix = np.floor((pts[:, 0] - self.origin_x) / self.cell_m).astype(np.intp)
        iy = np.floor((pts[:, 1] - self.origin_y) / self.cell_m).astype(np.intp)
        inside = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return np.where(inside, iy * self.nx + ix, -1)


def footprint(
    homography: Homography, width: int, height: int, limit_m: float = 100.0
) -> tuple[float, float, float, float]:
    """Floor rectangle (x0, y0, x1, y1) seen by a ``width``×``height`` source image, each side capped to ±limit."""
    corners = homography.to_floor([(0, 0), (width, 0), (width, height), (0, height)])
    corners = np.clip(corners, -limit_m, limit_m)
    return (float(corners[:, 0].min()), float(corners[:, 1].min()),
            float(corners[:, 0].max()), float(corners[:, 1].max()))


class Heatmap:
    """Person-seconds per floor cell, accumulated from foot points weighted by the time each frame stands for."""

    def __init__(self, grid: GridSpec) -> None:
        self.grid = grid
        self.seconds = np.zeros((grid.ny, grid.nx), dtype=np.float64)
        self.outside_seconds = 0.0

    def add(self, floor_points: F64, dt: float) -> None:
        """Add ``dt`` seconds for each floor point (points off the grid are tallied in ``outside_seconds``)."""
        cells = self.grid.cell_indices(floor_points)
        valid = cells[cells >= 0]
        np.add.at(self.seconds.reshape(-1), valid, dt)
        self.outside_seconds += dt * float((cells < 0).sum())

    @property
    def total_seconds(self) -> float:
        """All person-seconds on the grid."""
        return float(self.seconds.sum())


def points_in_polygon(points: F64, polygon: Sequence[Point]) -> npt.NDArray[np.bool_]:
    """Even-odd (ray casting) test of each point (N×2) against a polygon; edges count as inside half the time."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0][:, None], pts[:, 1][:, None]
    xi, yi = poly[:, 0][None, :], poly[:, 1][None, :]
    xj, yj = np.roll(poly[:, 0], 1)[None, :], np.roll(poly[:, 1], 1)[None, :]
    straddles = (yi > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = (xj - xi) * (y - yi) / (yj - yi) + xi
    hits = straddles & (x < x_cross)
    return np.asarray(hits.sum(axis=1) % 2 == 1)
