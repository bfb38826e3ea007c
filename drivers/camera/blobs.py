"""Person blobs from a foreground mask: size gates from the expected person size, and splitting of groups.

Groups of 2–3 people walking side by side merge into one elongated blob. We split a blob into ``k`` people,
``k`` chosen from its length across the row (major axis top-down, width angled) relative to one person's width
(and raised to the number of tracks predicted inside it when the area allows),
by 1-D k-means of its pixels projected on the blob's main axis (top-down) or on x (angled view). In the angled
view people also overlap front to back: a blob taller than ``STACK_CUT`` expected person heights at its foot row
(the height comes from the homography through ``row_scale``) is cut into the front person (the rows within one
body height of the blob's bottom) and the person behind (the rows above), whose hidden foot is placed one body
height below their head; each part is then split along x by its own width. A front row that already holds
``max_group`` people still leaves room for one person behind it, and a front-part cluster whose foot sits well
above the row (``LEG_RISE``) in the same column as the person behind is that person's legs, not a second person.
Why not distance-transform peaks: two bodies side by side make a capsule whose distance transform is a flat ridge with
no separate maxima, so peaks miss exactly the case that matters; k-means with a calibrated ``k`` always returns
``k`` centres, evenly spread along the row of people, and costs only a sort.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

View = Literal["top_down", "angled"]
KMEANS_ITERATIONS = 8
ANGLED_FILL = 0.45
# Cuts on a blob's length across the row of people, in units of one person's width: measured on simulated
# top-down scenes a single person's major axis is ≤ 1.2 widths, two abreast 1.43–2.27, three ≥ 2.69.
SPLIT_CUTS = (1.3, 2.45)
# Angled view: a single person's blob (shadow left out) is 0.94–1.15 expected heights tall; two people one
# behind the other (strangers keep ≥ 0.75 m apart, about 0.4 heights of image offset near the line) make ≥ 1.35.
STACK_CUT = 1.3
BODY_FRACTION = 0.95  # a standing person's pixels above the foot, in expected (shadow-inclusive) box heights
# Angled view, stacked blob: a front-part cluster whose foot is this many front-person heights above the blob's
# bottom is the legs of the person behind (the stack offset of two strangers, as for STACK_CUT), not a front person.
LEG_RISE = 0.4
CORE_FRACTION = 0.3  # a blob's foot point ignores its shadow pixels unless fewer than this share remain


@dataclass(frozen=True, slots=True)
class Blob:
    """One detected person in processing pixels: foot point, centroid, pixel area and group membership."""

    foot: tuple[float, float]
    centroid: tuple[float, float]
    area: float
    bbox: tuple[int, int, int, int]
    group: int = 1


@dataclass(frozen=True, slots=True)
class BlobParams:
    """Size gates in processing pixels."""

    person_w: float
    person_h: float
    view: View = "top_down"
    min_fraction: float = 0.3
    max_group: int = 3
    row_scale: tuple[float, ...] | None = None

    @property
    def person_area(self) -> float:
        """Pixel area of one person's blob: the ellipse in the expected box (top-down) or 45 % of it (angled).

        A standing person seen obliquely (head, shoulders, legs and the shadow at the feet) fills less of its
        box than a top-down ellipse; 0.45 is the measured median on the camera simulator's angled scenes.
        """
        fill = math.pi / 4.0 if self.view == "top_down" else ANGLED_FILL
        return fill * self.person_w * self.person_h

    def scale_at(self, y: float) -> float:
        """Linear size factor of a person whose foot is on row ``y`` (perspective; 1.0 without ``row_scale``)."""
        if self.row_scale is None:
            return 1.0
        row = min(max(round(y), 0), len(self.row_scale) - 1)
        return self.row_scale[row]


def group_size(area: float, length: float, params: BlobParams, hinted: int = 0, scale: float = 1.0) -> int:
    """How many people abreast a blob holds, from its ``length`` across the row of people (pixels).

    ``scale`` is the perspective size factor where the blob stands. ``hinted`` (tracks predicted inside the
    blob) raises the answer when the blob is big enough to hold that many people (55 % of their area).
    """
    ratio = length / (params.person_w * scale)
    size = 1 if ratio < SPLIT_CUTS[0] else 2 if ratio < SPLIT_CUTS[1] else 3
    if hinted > size and area >= 0.55 * hinted * params.person_area * scale * scale:
        size = hinted
    return max(1, min(size, params.max_group))


def major_axis_length(moments: dict[str, float]) -> float:
    """Length of the major axis of the ellipse with the same second moments as a contour."""
    m00 = moments["m00"]
    a, b, c = moments["mu20"] / m00, moments["mu11"] / m00, moments["mu02"] / m00
    largest = (a + c) / 2 + math.sqrt(((a - c) / 2) ** 2 + b * b)
    return 4.0 * math.sqrt(max(largest, 0.0))


def _quantiles(values: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.float64]:
    """``np.quantile(values, (arange(k) + 0.5) / k)`` (linear method), bit for bit, without its call overhead.

    numpy's generic quantile costs ~0.1 ms per call on a blob's few hundred pixels, most of it Python
    bookkeeping; this repeats its arithmetic (virtual index, then its two-sided lerp) on one sort.
    """
    ordered = np.sort(values)
    virtual = (values.size - 1) * ((np.arange(k) + 0.5) / k)
    below = np.floor(virtual)
    gamma = virtual - below
    lower = ordered[below.astype(np.intp)]
    upper = ordered[np.minimum(below.astype(np.intp) + 1, values.size - 1)]
    diff = upper - lower
    result: npt.NDArray[np.float64] = np.where(gamma >= 0.5, upper - diff * (1 - gamma), lower + diff * gamma)
    return result


def kmeans_1d(values: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.intp]:
    """Cluster labels 0..k-1 of 1-D ``values`` (Lloyd's algorithm from quantile seeds; labels ordered by value)."""
    centres = _quantiles(values, k)
    labels = np.zeros(values.shape, dtype=np.intp)
    for _ in range(KMEANS_ITERATIONS):
        # In 1-D the nearest centre is found from the midpoints between sorted centres.
        cuts = (centres[1:] + centres[:-1]) / 2.0
        new = np.searchsorted(cuts, values).astype(np.intp, copy=False)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        for index in range(k):
            members = values[labels == index]
            if members.size:
                # What ndarray.mean computes (the same sum over the same order, one division), minus its overhead.
                centres[index] = np.add.reduce(members) / members.size
        centres.sort()
    return labels


def _split(
    region: npt.NDArray[np.uint8], origin: tuple[int, int], k: int, view: View, area: float
) -> list[Blob]:
    ys, xs = np.nonzero(region)
    px = xs.astype(np.float64) + origin[0]
    py = ys.astype(np.float64) + origin[1]
    return _split_points(px, py, k, view, area, area, None)


def _split_points(
    px: npt.NDArray[np.float64], py: npt.NDArray[np.float64], k: int, view: View, area: float,
    total_pixels_area: float, foot_y: float | None, total_pixels: int | None = None,
) -> list[Blob]:
    """``k`` blobs from a point set by 1-D k-means; ``foot_y`` (angled, hidden feet) overrides the bottom row."""
    total = total_pixels if total_pixels is not None else px.size
    if view == "top_down":
        centred = np.stack([px - px.mean(), py - py.mean()])
        eigenvalues, eigenvectors = np.linalg.eigh(centred @ centred.T)
        axis = eigenvectors[:, int(np.argmax(eigenvalues))]
        projection = axis[0] * centred[0] + axis[1] * centred[1]
    else:
        projection = px
    labels = kmeans_1d(projection, k) if k > 1 else np.zeros(px.shape, dtype=np.intp)
    blobs: list[Blob] = []
    for index in range(k):
        member = labels == index
        count = int(np.count_nonzero(member))
        if count == 0:
            continue
        gx, gy = px[member], py[member]
        x0, y0 = int(gx.min()), int(gy.min())
        bbox = (x0, y0, int(gx.max()) - x0 + 1, int(gy.max()) - y0 + 1)
        # The means as ndarray.mean computes them (same summation order, one division), each computed once.
        centroid = (float(np.add.reduce(gx)) / count, float(np.add.reduce(gy)) / count)
        if foot_y is not None:
            foot = (centroid[0], foot_y)
        elif view == "top_down":
            foot = centroid
        else:
            foot = (centroid[0], float(gy.max()) + 1.0)  # the bottom edge of the lowest pixel row
        blobs.append(Blob(foot, centroid, total_pixels_area * count / total, bbox, k))
    return blobs


def _hidden_foot(top: float, params: BlobParams) -> float:
    """The foot row of a person whose head top is on row ``top`` (fixed point of foot = top + body height)."""
    foot = top + BODY_FRACTION * params.person_h * params.scale_at(top)
    for _ in range(3):
        foot = top + BODY_FRACTION * params.person_h * params.scale_at(foot)
    return foot


def _split_angled(
    region: npt.NDArray[np.uint8], origin: tuple[int, int], params: BlobParams, area: float,
    hints: npt.NDArray[np.float64], width: float,
) -> list[Blob]:
    """People in one angled-view blob: peel the front person off a stack, then split each part along x.

    ``width`` is the whole blob's width with its shadow, used for the x split when there is no stack.
    """
    ys, xs = np.nonzero(region)
    if xs.size == 0:
        return []
    px = xs.astype(np.float64) + origin[0]
    py = ys.astype(np.float64) + origin[1]
    bottom = float(py.max()) + 1.0
    top = float(py.min())
    front_h = params.person_h * params.scale_at(bottom)
    parts: list[tuple[npt.NDArray[np.bool_], float | None]] = []
    if bottom - top > STACK_CUT * front_h and params.max_group > 1:
        cut = bottom - BODY_FRACTION * front_h
        front = py >= cut
        back_foot = _hidden_foot(top, params)
        parts = [(front, None), (~front, back_foot)]
        # A predicted track belongs to the part whose foot row it is nearer.
        middle = (bottom + back_foot) / 2.0
        hint_rows = [hints[:, 1] >= middle, hints[:, 1] < middle]
    else:
        parts = [(np.ones(px.shape, dtype=np.bool_), None)]
        hint_rows = [np.ones(len(hints), dtype=np.bool_)]
    blobs: list[Blob] = []
    budget = params.max_group
    for (member, foot_y), rows in zip(parts, hint_rows, strict=True):
        gx, gy = px[member], py[member]
        if gx.size == 0:
            continue
        foot_row = foot_y if foot_y is not None else float(gy.max()) + 1.0
        scale = params.scale_at(foot_row)
        x0, x1 = float(gx.min()), float(gx.max()) + 1.0
        part_hints = hints[rows]
        inside = int(((part_hints[:, 0] >= x0) & (part_hints[:, 0] < x1)).sum()) if part_hints.size else 0
        part_area = area * gx.size / px.size
        length = width if len(parts) == 1 else x1 - x0
        if budget <= 0:
            # The front row used the whole cap (a full row abreast): the part behind still holds one person
            # when it passes the same size gate as a blob of its own.
            if part_area < params.min_fraction * params.person_area * scale * scale:
                break
            budget = 1
        k = max(1, min(group_size(part_area, length, params, inside, scale), budget))
        found = _split_points(gx, gy, k, "angled", area, area, foot_y, px.size)
        if foot_y is not None:
            found = [b for b in found if not any(_same_person(f, b, bottom - LEG_RISE * front_h, params)
                                                 for f in blobs)]
        budget -= len(found)
        blobs.extend(found)
    return blobs


def _same_person(front: Blob, back: Blob, raised: float, params: BlobParams) -> bool:
    """True when a front-part cluster is the legs of the person behind: foot well above the row, same column."""
    half = 0.5 * params.person_w * params.scale_at(front.foot[1])
    return front.foot[1] < raised and abs(front.foot[0] - back.foot[0]) < half


def detect_blobs(
    mask: npt.NDArray[np.uint8],
    params: BlobParams,
    hints: Sequence[tuple[float, float]] = (),
    shadow: npt.NDArray[np.uint8] | None = None,
) -> list[Blob]:
    """Person blobs in a 0/255 foreground mask; ``hints`` are predicted track positions used to split merges.

    ``shadow`` (0/255, optional) marks mask pixels that look like cast shadow: they count for the blob's size
    but not for its foot point, unless they are nearly the whole blob.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area = params.min_fraction * params.person_area
    # Plain floats: a handful of hints tested against each blob's box is cheaper in Python than in numpy.
    hint_list: list[tuple[float, float]] = [
        (float(hx), float(hy)) for hx, hy in np.asarray(hints, dtype=np.float64).reshape(-1, 2).tolist()
    ]
    blobs: list[Blob] = []
    for contour in contours:
        moments = cv2.moments(contour)
        area = float(moments["m00"])
        if area <= 0:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        scale = params.scale_at(y + h if params.view == "angled" else y + h / 2)
        if area < min_area * scale * scale:
            continue
        region = np.zeros((h, w), dtype=np.uint8)
        cv2.drawContours(region, [contour], -1, 255, thickness=-1, offset=(-x, -y))
        region &= mask[y : y + h, x : x + w]
        if shadow is not None:
            # Both are 0/255, so a saturating subtraction is region & ~shadow in one OpenCV call.
            core = np.asarray(cv2.subtract(region, shadow[y : y + h, x : x + w]), dtype=np.uint8)
            if cv2.countNonZero(core) >= CORE_FRACTION * area:
                region = core
        if params.view == "angled":
            inside = [(hx, hy) for hx, hy in hint_list if x <= hx < x + w and y <= hy < y + h]
            part_hints = np.asarray(inside, dtype=np.float64).reshape(-1, 2)
            blobs.extend(_split_angled(region, (x, y), params, area, part_hints, float(w)))
            continue
        hinted = sum(1 for hx, hy in hint_list if x <= hx < x + w and y <= hy < y + h)
        k = group_size(area, major_axis_length(moments), params, hinted, scale)
        if k == 1:
            # Top-down, one person: foot = centroid = the pixels' mean, read from the region's pixel moments
            # (exact integer sums, so the same float as averaging the pixel coordinates) rather than np.nonzero.
            pixels = cv2.moments(region, binaryImage=True)
            count = pixels["m00"]
            if count <= 0:
                continue
            centroid = ((pixels["m10"] + x * count) / count, (pixels["m01"] + y * count) / count)
            blobs.append(Blob(centroid, centroid, area, (x, y, w, h)))
            continue
        blobs.extend(_split(region, (x, y), k, params.view, area))
    return blobs
