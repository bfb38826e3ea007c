"""The floor grid and the fused floor heatmap: camera, WiFi and till layers on one grid, zones, comparisons.

Pure: arrays in, arrays out; no DB, no I/O, no clock. ``edge.footfall`` builds the layers from the store's tables
and ``edge.analytics.fusion`` gives the person-seconds ``T`` they must add up to (the cameras' occupancy integrated
over time). The rules:

* **Fused floor heatmap** (person-seconds per cell of the floor grid, origin at the floor's corner): where a
  camera sees (its grid's rectangle), the camera's person-seconds; elsewhere the WiFi layer's device-seconds,
  rescaled so the whole grid sums to ``T``: the rest ``max(0, T − camera seconds in view)`` is spread over the
  cells the camera does not see in proportion to WiFi. The camera is exact where it looks; WiFi says where the
  rest of the people were; the camera's occupancy says how many. Overlapping cameras: the larger value per cell.
* **Tills**: a till scanner with a ``position`` (where the customer pays) holds one person from each transaction's
  first scan until ``till_pay_s`` after its last, or until the next transaction's first scan if sooner
  (``till_seconds``). Those person-seconds are taken out of the WiFi-placed seconds of the zone holding the till
  (the WiFi layer saw the same customers, blurred around the checkout) and put on the till's cell (``place_tills``),
  so the zones' totals do not change and the till shows as the hot spot it is.
* **Zone dwell (persons)**: the fused grid summed over each zone (a cell belongs to the first zone containing its
  centre). Without WiFi cells (sniffers without positions), the WiFi zone device-seconds are scaled so that the
  zones sum to ``T``: the same shares, in person-seconds.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.analytics.fusion import transactions

F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Polygon = Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Grid:
    """The shared floor grid: ``nx`` × ``ny`` cells of ``cell_m`` from the floor's corner (0, 0).

    Arrays on it have shape ``(ny, nx)`` (row = y); a flat index is ``iy * nx + ix``.
    """

    cell_m: float
    nx: int
    ny: int

    @classmethod
    def for_floor(cls, width_m: float, depth_m: float, cell_m: float) -> "Grid":
        """The grid covering a ``width_m`` × ``depth_m`` floor."""
        return cls(cell_m, max(1, math.ceil(width_m / cell_m - 1e-9)), max(1, math.ceil(depth_m / cell_m - 1e-9)))

    def zeros(self) -> F64:
        """An empty layer."""
        return np.zeros((self.ny, self.nx), dtype=np.float64)

    def centres(self) -> tuple[F64, F64]:
        """x and y of every cell's centre, as two ``(ny, nx)`` arrays."""
        xs = (np.arange(self.nx) + 0.5) * self.cell_m
        ys = (np.arange(self.ny) + 0.5) * self.cell_m
        gx, gy = np.meshgrid(xs, ys)
        return gx, gy


def bin_points(grid: Grid, xs: npt.ArrayLike, ys: npt.ArrayLike, values: npt.ArrayLike) -> F64:
    """Add each value at the cell holding its point; points off the floor are dropped."""
    x = np.asarray(xs, dtype=np.float64).ravel()
    y = np.asarray(ys, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    ix = np.floor(x / grid.cell_m).astype(np.int64)
    iy = np.floor(y / grid.cell_m).astype(np.int64)
    keep = (ix >= 0) & (ix < grid.nx) & (iy >= 0) & (iy < grid.ny)
    out = grid.zeros()
    np.add.at(out, (iy[keep], ix[keep]), v[keep])
    return out


def rect_mask(grid: Grid, x0: float, y0: float, x1: float, y1: float) -> Mask:
    """Cells whose centre lies in the rectangle ``[x0, x1) × [y0, y1)``."""
    gx, gy = grid.centres()
    return np.asarray((gx >= x0) & (gx < x1) & (gy >= y0) & (gy < y1), dtype=np.bool_)


def points_in_polygon(xs: F64, ys: F64, polygon: Polygon) -> Mask:
    """Element-wise even-odd point-in-polygon test."""
    inside = np.zeros(np.shape(xs), dtype=np.bool_)
    for (xi, yi), (xj, yj) in zip(polygon, [*polygon[-1:], *polygon[:-1]], strict=True):
        straddles = (yi > ys) != (yj > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = (xj - xi) * (ys - yi) / (yj - yi) + xi
        inside ^= straddles & (xs < crossing)
    return inside


def zone_masks(grid: Grid, zones: Sequence[tuple[str, Polygon]]) -> dict[str, Mask]:
    """Each zone's cells: a cell belongs to the first zone that contains its centre."""
    gx, gy = grid.centres()
    taken = np.zeros((grid.ny, grid.nx), dtype=np.bool_)
    masks: dict[str, Mask] = {}
    for name, polygon in zones:
        mask = points_in_polygon(gx, gy, polygon) & ~taken
        taken |= mask
        masks[name] = mask
    return masks


@dataclass(frozen=True, slots=True)
class FusedHeat:
    """The fused layer and where its person-seconds came from: ``camera`` seconds in view, ``wifi`` seconds
    placed by the WiFi layer, ``unplaced`` seconds of the total that had no WiFi cell to go to."""

    values: F64
    camera: float
    wifi: float
    unplaced: float


def fuse_heat(camera: F64, coverage: Mask, wifi: F64, total: float) -> FusedHeat:
    """Camera where it sees; elsewhere WiFi, rescaled so the grid sums to ``total`` person-seconds."""
    seen = np.where(coverage, camera, 0.0)
    in_view = float(seen.sum())
    rest = max(0.0, total - in_view)
    elsewhere = np.where(coverage, 0.0, np.clip(wifi, 0.0, None))
    weight = float(elsewhere.sum())
    if weight <= 0.0 or rest <= 0.0:
        return FusedHeat(seen, in_view, 0.0, rest)
    return FusedHeat(seen + elsewhere * (rest / weight), in_view, rest, 0.0)


def till_seconds(times: Sequence[float], gap_s: float, pay_s: float, start: float, end: float) -> float:
    """Person-seconds at one till in ``[start, end)`` from its scan times (ascending; include the scans of the
    ``gap_s`` before ``start``): each transaction from its first scan to ``pay_s`` after its last, cut at the next
    transaction's first scan."""
    bursts = transactions(times, gap_s)
    total = 0.0
    for i, (first, last) in enumerate(bursts):
        stop = last + pay_s if i + 1 == len(bursts) else min(last + pay_s, bursts[i + 1][0])
        total += max(0.0, min(stop, end) - max(first, start))
    return total


def place_tills(fused: FusedHeat, coverage: Mask, masks: Mapping[str, Mask],
                tills: Sequence[tuple[tuple[int, int], float]]) -> tuple[FusedHeat, float]:
    """Move the tills' person-seconds (``((iy, ix), seconds)`` each) out of the WiFi-placed cells of their zone,
    in proportion, onto the tills' cells; returns the new layer and the seconds placed at tills. A zone gives at
    most what WiFi placed in it (its tills then share that in proportion to their seconds)."""
    values = fused.values.copy()
    wanted: dict[str, list[tuple[tuple[int, int], float]]] = {}
    for (iy, ix), seconds in tills:
        zone = next((name for name, mask in masks.items() if mask[iy, ix]), None)
        if zone is not None and seconds > 0.0 and not coverage[iy, ix]:
            wanted.setdefault(zone, []).append(((iy, ix), seconds))
    placed = 0.0
    for zone, spots in wanted.items():
        cells = masks[zone] & ~coverage
        available = float(values[cells].sum())
        want = sum(seconds for _, seconds in spots)
        moved = min(want, available)
        if moved <= 0.0:
            continue
        values[cells] *= (available - moved) / available
        for (iy, ix), seconds in spots:
            values[iy, ix] += moved * seconds / want
        placed += moved
    return FusedHeat(values, fused.camera, fused.wifi - placed, fused.unplaced), placed


def zone_seconds(values: F64, masks: Mapping[str, Mask]) -> dict[str, float]:
    """A layer summed over each zone."""
    return {name: float(values[mask].sum()) for name, mask in masks.items()}


def scaled_shares(device_seconds: Mapping[str, float], zones: Sequence[str], total: float) -> dict[str, float]:
    """The zones' WiFi device-seconds rescaled so they sum to ``total`` (0 everywhere when WiFi saw nobody)."""
    known = {zone: max(0.0, device_seconds.get(zone, 0.0)) for zone in zones}
    weight = sum(known.values())
    return {zone: (seconds / weight * total if weight > 0 else 0.0) for zone, seconds in known.items()}


def sparse(values: F64, min_value: float = 0.05, digits: int = 1) -> tuple[tuple[int, float], ...]:
    """Non-negligible cells as ``(flat index, value rounded)`` pairs."""
    flat = values.ravel()
    keep = np.flatnonzero(flat >= min_value)
    return tuple((int(i), round(float(flat[i]), digits)) for i in keep)


def dense(grid: Grid, cells: Iterable[Sequence[float]]) -> F64:
    """A layer from ``[[flat index, value], ...]``."""
    out = grid.zeros().ravel()
    for index, value in cells:
        out[int(index)] += float(value)
    return out.reshape(grid.ny, grid.nx)


def block_sum(values: F64, factor: int) -> F64:
    """Coarsen a layer by summing ``factor`` × ``factor`` blocks (edges padded with zeros)."""
    if factor <= 1:
        return values
    ny, nx = values.shape
    padded = np.zeros((math.ceil(ny / factor) * factor, math.ceil(nx / factor) * factor), dtype=np.float64)
    padded[:ny, :nx] = values
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return np.asarray(blocks.sum(axis=(1, 3)), dtype=np.float64)


def heatmap_correlation(estimate: npt.ArrayLike, truth: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> float:
    """Pearson correlation of two layers on the same grid (optionally only the cells in ``mask``).

    0.0 when either layer is constant (nothing to correlate). Compare on a grid as coarse as the question: WiFi
    placement is smooth at the 0.5 m scale, so ``block_sum`` both layers to 1–2 m cells for a floor-level
    comparison.
    """
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"layers differ in shape: {a.shape} vs {b.shape}")
    if mask is not None:
        keep = np.asarray(mask, dtype=np.bool_)
        a, b = a[keep], b[keep]
    a, b = a.ravel(), b.ravel()
    if a.size < 2 or float(a.std()) == 0.0 or float(b.std()) == 0.0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
