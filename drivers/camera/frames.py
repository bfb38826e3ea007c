"""Frame selection and resizing for the processing rate and width (pure functions, no capture).

Frame selection rule: a source delivering ``source_fps`` frames per second is processed at
``r = min(1, process_fps / source_fps)`` of its frames; frame ``i`` (0-based, counted from the start of the
stream) is processed when ``ceil((i + 1) · r) > ceil(i · r)``, i.e. each time the running count of frames
owed at the processing rate steps up. Frame 0 is always taken, and the selected frames are as evenly spaced
as whole frames allow (12 → 10 fps keeps 10 of every 12, dropping frames 5 and 11;
30 → 10 keeps every third). Every frame is still decoded (or at least grabbed), so the newest one is at hand;
only the selected ones are converted and processed.
"""

import math
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt


def frame_selector(source_fps: float, process_fps: float) -> Callable[[int], bool]:
    """A predicate on the source frame index that is true for the frames to process (rule in the docstring)."""
    if source_fps <= 0 or process_fps <= 0:
        raise ValueError("frame rates must be positive")
    rate = min(1.0, process_fps / source_fps)
    if rate >= 1.0:
        return lambda index: True
    # A tiny epsilon keeps exact ratios (e.g. 10/30) from gaining a frame to rounding.
    return lambda index: math.ceil((index + 1) * rate - 1e-9) > math.ceil(index * rate - 1e-9)


def resize_to_width(frame: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    """``frame`` scaled by ``scale`` (≤ 1) with area averaging; the same array when ``scale`` is 1."""
    if scale >= 1.0:
        return frame
    height, width = frame.shape[:2]
    size = (round(width * scale), round(height * scale))
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
