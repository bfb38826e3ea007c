"""Foreground masks from BGR frames: a background model robust to light drift and lights-on, shadows, morphology.

Pure image processing on arrays: no capture, no I/O, no clocks. One ``ForegroundModel`` per camera, fed frames
already resized to the processing size.
"""

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
BackgroundKind = Literal["running_average", "mog2", "knn"]

# After a start or a global light change the background is the per-pixel median of this many frames, so people
# walking through during those frames are not baked into it. Meanwhile the model reports no foreground.
LEARN_FRAMES = 7
# Foreground pixels still blend into the background, this many times slower than the rest, so a bag left on
# the floor fades out after minutes while a person pausing on the line stays foreground.
FOREGROUND_SLOWDOWN = 10.0
# Brightness matching samples every Nth pixel; the median ratio is robust to the people in view.
SAMPLE_STEP = 8
# The running average is blended into every Nth frame with N × alpha: the same adaptation per second at a
# fraction of the per-frame cost (the float background and its 8-bit copy change only then).
UPDATE_EVERY = 2
CHANNEL_MAX_KERNEL = np.ones((1, 3), dtype=np.uint8)
GRAY_WEIGHTS = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # BGR → grey, as cv2.COLOR_BGR2GRAY


@dataclass(frozen=True, slots=True)
class ForegroundParams:
    """Tunables of the foreground model (processing-resolution units)."""

    kind: BackgroundKind = "running_average"
    diff_threshold: int = 28
    alpha: float = 0.03
    lights_change_fraction: float = 0.45
    shadow_removal: bool = False
    shadow_refine: bool = True
    open_px: int = 3
    close_px: int = 7
    shadow_ratio: tuple[float, float] = (0.45, 0.92)
    shadow_chroma_tolerance: float = 0.06


def as_u8(image: object) -> U8:
    """OpenCV's result as a typed uint8 array (no copy when it already is one)."""
    return np.asarray(image, dtype=np.uint8)


class ForegroundModel:
    """Turns each frame into a binary foreground mask (0/255) of moving or newly-present things.

    Every frame's brightness is first matched to the background: gain = median over a pixel sample of
    background / frame (grey), so slow drift and a uniform lights-on produce no difference at all, and people
    (a minority of pixels) do not bias the gain. ``running_average`` (default) keeps a float BGR background,
    updated with ``alpha`` where the frame is background and ``alpha / 40`` where it is foreground; pixels
    differing by more than ``diff_threshold`` in any colour channel are foreground unless they are a cast
    shadow (darker by a ratio within ``shadow_ratio`` in every channel with unchanged chromaticity).
    ``mog2``/``knn`` use OpenCV's
    subtractors on the brightness-matched frame, with their shadow label (127) thresholded away.

    If more than ``lights_change_fraction`` of the ROI turns foreground at once (a non-uniform lights change),
    the model re-learns like Frigate's lightning handling: it reports empty masks for ``LEARN_FRAMES`` frames
    and takes the per-pixel median of them as the new background. ``learning`` is true meanwhile.
    """

    def __init__(self, params: ForegroundParams, roi_mask: U8 | None = None) -> None:
        self.params = params
        self._roi = roi_mask
        self._bg: F32 | None = None
        self._bg_gray_sample: F32 | None = None
        self._learning: list[U8] = []
        self._subtractor: cv2.BackgroundSubtractor | None = None
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (params.open_px, params.open_px))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (params.close_px, params.close_px))
        self.relearn_events = 0
        self.shadow: U8 | None = None
        self._bg_u8: U8 | None = None
        self._frames = 0

    @property
    def learning(self) -> bool:
        """True while the model is (re)learning the background and reports no foreground."""
        return self._bg is None

    def _gain(self, gray: U8) -> float:
        reference = self._bg_gray_sample
        if reference is None:
            return 1.0
        sample = gray[::SAMPLE_STEP, ::SAMPLE_STEP].astype(np.float32)
        usable = sample > 8
        if not usable.any():
            return 1.0
        return _median(reference[usable] / sample[usable])

    def apply(self, frame_bgr: U8) -> U8:
        """The foreground mask of one BGR frame (uint8, 0 or 255, same height and width).

        With ``shadow_refine`` (running_average), ``shadow`` then holds the foreground pixels that look like a
        cast shadow; they stay in the mask (a person dressed like the floor looks the same) but are left out
        when a blob's foot point is computed, so shadows do not pull it towards themselves.
        """
        self.shadow = None
        gray = as_u8(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY))
        gain = self._gain(gray)
        if abs(gain - 1.0) >= 0.01:
            frame_bgr = as_u8(cv2.convertScaleAbs(frame_bgr, alpha=gain))
            gray = as_u8(cv2.convertScaleAbs(gray, alpha=gain))
        if self._bg is None:
            return self._learn(frame_bgr)
        raw = self._running_average(frame_bgr, gray) if self.params.kind == "running_average" else self._subtract(
            frame_bgr
        )
        if self._roi is not None:
            raw = as_u8(cv2.bitwise_and(raw, self._roi))
        changed = cv2.countNonZero(raw)
        area = cv2.countNonZero(self._roi) if self._roi is not None else raw.size
        if changed > self.params.lights_change_fraction * area:
            self.relearn_events += 1
            self._bg = None
            self._learning = []
            return self._learn(frame_bgr)
        mask = cv2.morphologyEx(raw, cv2.MORPH_OPEN, self._open)
        return as_u8(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close))

    def _learn(self, frame_bgr: U8) -> U8:
        self._learning.append(frame_bgr.copy())
        if len(self._learning) == 1:
            self._bg_gray_sample = (
                cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)[::SAMPLE_STEP, ::SAMPLE_STEP].astype(np.float32)
            )
        if self.params.kind != "running_average":
            if len(self._learning) == 1:
                self._subtractor = (
                    cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=16, detectShadows=True)
                    if self.params.kind == "mog2"
                    else cv2.createBackgroundSubtractorKNN(history=300, dist2Threshold=400, detectShadows=True)
                )
            assert self._subtractor is not None
            self._subtractor.apply(frame_bgr, learningRate=1.0 / len(self._learning))
        if len(self._learning) >= LEARN_FRAMES:
            background = np.median(np.stack(self._learning), axis=0).astype(np.uint8)
            self._bg = background.astype(np.float32)
            self._bg_u8 = None
            self._bg_gray_sample = (
                cv2.cvtColor(background, cv2.COLOR_BGR2GRAY)[::SAMPLE_STEP, ::SAMPLE_STEP].astype(np.float32)
            )
            if self._subtractor is not None:
                self._subtractor.apply(background, learningRate=1.0)
            self._learning = []
        return np.zeros(frame_bgr.shape[:2], dtype=np.uint8)

    def _running_average(self, frame: U8, gray: U8) -> U8:
        bg = self._bg
        assert bg is not None
        # The largest per-channel difference: people dressed in the floor's brightness but not its colour show.
        if self._bg_u8 is None:
            self._bg_u8 = as_u8(cv2.convertScaleAbs(bg))
        diff = as_u8(cv2.absdiff(frame, self._bg_u8))
        height, width = diff.shape[:2]
        # Channel max in one pass: a 1×3 dilation over the interleaved row puts each pixel's max on its G byte
        # (three strided cv2.max calls would copy each channel plane first).
        # extractChannel copies the G bytes out in C (a numpy strided copy of them costs about twice as much).
        spread = as_u8(cv2.dilate(diff.reshape(height, width * 3), CHANNEL_MAX_KERNEL))
        diff = as_u8(cv2.extractChannel(spread.reshape(height, width, 3), 1))
        raw = as_u8(cv2.threshold(diff, self.params.diff_threshold, 255, cv2.THRESH_BINARY)[1])
        if self.params.shadow_removal or self.params.shadow_refine:
            shadows = self._shadows(frame, bg, raw)
            self.shadow = shadows
            if self.params.shadow_removal:
                raw = as_u8(cv2.bitwise_and(raw, cv2.bitwise_not(shadows)))
        self._frames += 1
        if self._frames % UPDATE_EVERY == 0:
            alpha = min(0.5, self.params.alpha * UPDATE_EVERY)
            cv2.accumulateWeighted(frame, bg, alpha, mask=cv2.bitwise_not(raw))
            cv2.accumulateWeighted(frame, bg, alpha / FOREGROUND_SLOWDOWN, mask=raw)
            self._bg_u8 = None
            sample = bg[::SAMPLE_STEP, ::SAMPLE_STEP]
            self._bg_gray_sample = (sample @ GRAY_WEIGHTS).astype(np.float32)
        return raw

    def _shadows(self, frame: U8, bg: F32, candidates: U8) -> U8:
        """Pixels among ``candidates`` that are uniformly darker with the background's chromaticity."""
        lo, hi = self.params.shadow_ratio
        # np.nonzero on a boolean array is several times faster than on uint8 (0/255) for a mostly-empty mask.
        index = np.flatnonzero(candidates != 0)
        out = np.zeros_like(candidates)
        if index.size == 0:
            return out
        # Only the candidate pixels are tested: they are a few percent of the frame. Channels are rows (3 × N)
        # because numpy reduces along a short last axis many times slower than it combines three long rows.
        f = frame.reshape(-1, 3).take(index, axis=0).T.astype(np.float32)
        f += 1.0
        b = bg.reshape(-1, 3).take(index, axis=0).T + 1.0
        ratio = f / b
        low = np.minimum(np.minimum(ratio[0], ratio[1]), ratio[2])
        high = np.maximum(np.maximum(ratio[0], ratio[1]), ratio[2])
        f /= f[0] + f[1] + f[2]
        b /= b[0] + b[1] + b[2]
        f -= b
        np.abs(f, out=f)
        chroma = np.maximum(np.maximum(f[0], f[1]), f[2])
        shadow = (low >= lo) & (high <= hi) & (chroma <= self.params.shadow_chroma_tolerance)
        out.reshape(-1)[index[shadow]] = 255
        return out

    def _subtract(self, frame: U8) -> U8:
        assert self._subtractor is not None
        mask = self._subtractor.apply(frame)
        # MOG2/KNN label shadows 127: keep only confident foreground (255) when shadows are to be removed.
        threshold = 200 if self.params.shadow_removal else 100
        raw = as_u8(cv2.threshold(mask, threshold, 255, cv2.THRESH_BINARY)[1])
        if self._bg is not None:
            bg_gray = cv2.cvtColor(self._subtractor.getBackgroundImage(), cv2.COLOR_BGR2GRAY)
            self._bg_gray_sample = bg_gray[::SAMPLE_STEP, ::SAMPLE_STEP].astype(np.float32)
        return raw


def _median(values: F32) -> float:
    """``float(np.median(values))`` for a non-empty, NaN-free array, bit for bit, without its call overhead.

    The same partition and the same float32 mean of the middle one or two values; np.median's bookkeeping
    cost as much as the brightness match itself on a frame's sample.
    """
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2)


def polygon_mask(shape: tuple[int, int], polygon: list[tuple[float, float]] | None, scale: float) -> U8 | None:
    """A 0/255 mask of ``shape`` (h, w) filled inside ``polygon`` (source px, scaled by ``scale``), or ``None``."""
    if polygon is None:
        return None
    mask = np.zeros(shape, dtype=np.uint8)
    points = np.round(np.asarray(polygon, dtype=np.float64) * scale).astype(np.int32)
    cv2.fillPoly(mask, [points], 255)
    return mask
