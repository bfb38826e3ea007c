"""Label images: OEPL JSON elements drawn in a tag's palette at its exact resolution, encoded as a baseline JPEG.

The AP silently never shows a progressive JPEG or one of another size (OpenEPaperLink issue #187), so both are
checked here before the bytes leave. Every pixel is snapped to the tag's palette before encoding. Text uses
OpenCV's Hershey font scaled to the AP font's size and squeezed into the width ``drawing.text_width`` estimated
for it, so an image shows the same layout the AP would draw from the JSON.
Upload it with ``dither=0``: it needs no dithering.
"""

import unicodedata
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from drivers.esl.content import TagType
from drivers.esl.drawing import (
    BLACK,
    COLOUR_NAMES,
    ContentError,
    Element,
    font_metrics,
    shorten_text,
    text_bounds,
    wrap_text,
)

Canvas = npt.NDArray[np.uint8]
BGR = tuple[int, int, int]

JPEG_QUALITY = 95
SOF_BASELINE = 0xC0
SOF_EXTENDED = 0xC1
SOF_PROGRESSIVE = 0xC2
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4 DHT, C8 JPG, CC DAC are not frames
_START_OF_SCAN = 0xDA
_FACE = cv2.FONT_HERSHEY_DUPLEX
_HERSHEY_CAP_PX = 20.5  # cap height of the Hershey face at scale 1.0, measured
_CAP_PER_SIZE = 0.7  # cap height of the AP's fonts per pixel of font size
# Hershey has ASCII only: these are drawn as a base letter with bars across at fractions of the cap height.
_BARRED = {"€": ("C", (0.38, 0.62)), "£": ("L", (0.5,)), "¥": ("Y", (0.3, 0.5)), "ł": ("l", (0.45,)),
           "Ł": ("L", (0.45,))}


def _bgr(value: int | float | str, tag: TagType) -> BGR:
    """The palette colour of an OEPL colour number or name; one the tag lacks is black."""
    if isinstance(value, str) and value in COLOUR_NAMES:
        index = COLOUR_NAMES.index(value)
    elif isinstance(value, int) and 0 <= value < len(COLOUR_NAMES):
        index = value
    else:
        raise ContentError(f"cannot draw colour {value!r} (use {', '.join(COLOUR_NAMES)} or 0-3)")
    r, g, b = tag.colortable.get(COLOUR_NAMES[index], tag.colortable[COLOUR_NAMES[BLACK]])
    return b, g, r


def _ascii(text: str) -> tuple[str, list[tuple[int, tuple[float, ...]]]]:
    """``text`` in Hershey's ASCII (accents dropped, currency symbols as barred letters) and where the bars go."""
    out: list[str] = []
    bars: list[tuple[int, tuple[float, ...]]] = []
    for char in text:
        if char in _BARRED:
            base, heights = _BARRED[char]
            bars.append((len(out), heights))
            out.append(base)
        elif char.isascii():
            out.append(char)
        else:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(plain[:1] or "?")
    return "".join(out), bars


def _draw_text(canvas: Canvas, x: int, y: int, text: str, font: str, colour: BGR, align: int) -> None:
    """One line of text where the AP would draw it, no wider than its estimated bounds."""
    x0, top, x1, _ = text_bounds(x, y, text, font, align)
    metrics = font_metrics(font)
    drawn, bars = _ascii(text)
    if not drawn.strip() or x1 <= x0:
        return
    thickness = max(1, round(metrics.size / 11))
    scale = _CAP_PER_SIZE * metrics.size / _HERSHEY_CAP_PX
    (width, _), _ = cv2.getTextSize(drawn, _FACE, scale, thickness)
    if width > x1 - x0:
        scale *= (x1 - x0) / width
        (width, _), _ = cv2.getTextSize(drawn, _FACE, scale, thickness)
    left = x0 if align == 0 else x - width // 2 if align == 1 else x - width
    baseline = top + metrics.ascent
    cv2.putText(canvas, drawn, (left, baseline), _FACE, scale, colour, thickness, cv2.LINE_8)
    cap = round(_HERSHEY_CAP_PX * scale)
    for index, heights in bars:
        (start, _), _ = cv2.getTextSize(drawn[:index], _FACE, scale, thickness) if index else ((0, 0), 0)
        (glyph, _), _ = cv2.getTextSize(drawn[index], _FACE, scale, thickness)
        for height in heights:
            bar_y = baseline - round(cap * height)
            cv2.line(canvas, (left + start - glyph // 6, bar_y), (left + start + glyph * 2 // 3, bar_y), colour,
                     thickness, cv2.LINE_8)


def _text(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    align = int(args[5]) if len(args) > 5 else 0
    _draw_text(canvas, int(args[0]), int(args[1]), str(args[2]), str(args[3]), _bgr(args[4], tag), align)


def _textbox(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    """Text wrapped at word boundaries inside a box, as the AP does; lines that do not fit are dropped."""
    x, y, width, height = (int(a) for a in args[:4])
    text, font, colour = str(args[4]), str(args[5]), _bgr(args[6], tag)
    factor = float(args[7]) if len(args) > 7 and float(args[7]) > 0 else 1.0
    align = int(args[8]) if len(args) > 8 else 0
    metrics = font_metrics(font)
    step = max(1, round(metrics.line_height * factor))
    max_lines = max(1, (height - metrics.line_height) // step + 1)
    lines = wrap_text(text, font, width, max_lines) or shorten_text(text, font, width, max_lines)
    anchor = x if align == 0 else x + width // 2 if align == 1 else x + width
    for i, line in enumerate(lines):
        top = y + i * step
        _draw_text(canvas, anchor, top + metrics.ascent if metrics.from_baseline else top, line, font, colour, align)


def _box(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    x, y, w, h = (int(a) for a in args[:4])
    if w <= 0 or h <= 0:
        return
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), _bgr(args[4], tag), -1, cv2.LINE_8)
    if len(args) > 6 and int(args[6]) > 0:
        border = _bgr(args[5], tag)
        for i in range(min(int(args[6]), (min(w, h) + 1) // 2)):
            cv2.rectangle(canvas, (x + i, y + i), (x + w - 1 - i, y + h - 1 - i), border, 1, cv2.LINE_8)


def _round_rect(canvas: Canvas, x: int, y: int, w: int, h: int, r: int, colour: BGR) -> None:
    r = max(0, min(r, w // 2, h // 2))
    cv2.rectangle(canvas, (x + r, y), (x + w - 1 - r, y + h - 1), colour, -1, cv2.LINE_8)
    cv2.rectangle(canvas, (x, y + r), (x + w - 1, y + h - 1 - r), colour, -1, cv2.LINE_8)
    for cx, cy in ((x + r, y + r), (x + w - 1 - r, y + r), (x + r, y + h - 1 - r), (x + w - 1 - r, y + h - 1 - r)):
        cv2.circle(canvas, (cx, cy), r, colour, -1, cv2.LINE_8)


def _rbox(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    x, y, w, h, r = (int(a) for a in args[:5])
    if w <= 0 or h <= 0:
        return
    _round_rect(canvas, x, y, w, h, r, _bgr(args[5], tag))
    if len(args) > 7 and int(args[7]) > 0:
        # A border of width b is the outer rounded rectangle with the inner one drawn over it in the fill.
        b = min(int(args[7]), (min(w, h) + 1) // 2)
        _round_rect(canvas, x, y, w, h, r, _bgr(args[6], tag))
        _round_rect(canvas, x + b, y + b, w - 2 * b, h - 2 * b, max(0, r - b), _bgr(args[5], tag))


def _line(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    x1, y1, x2, y2 = (int(a) for a in args[:4])
    cv2.line(canvas, (x1, y1), (x2, y2), _bgr(args[4], tag), 1, cv2.LINE_8)


def _triangle(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    corners = np.array([[int(args[i]), int(args[i + 1])] for i in (0, 2, 4)], dtype=np.int32)
    cv2.fillPoly(canvas, [corners], _bgr(args[6], tag), cv2.LINE_8)


def _circle(canvas: Canvas, args: Sequence[int | float | str], tag: TagType) -> None:
    x, y, r = (int(a) for a in args[:3])
    cv2.circle(canvas, (x, y), r, _bgr(args[3], tag), -1, cv2.LINE_8)
    if len(args) > 5 and int(args[5]) > 0:
        width = min(int(args[5]), r + 1)
        cv2.circle(canvas, (x, y), r - width // 2, _bgr(args[4], tag), width, cv2.LINE_8)


_DRAW: dict[str, Callable[[Canvas, Sequence[int | float | str], TagType], None]] = {
    "text": _text, "textbox": _textbox, "box": _box, "rbox": _rbox, "line": _line, "triangle": _triangle,
    "circle": _circle,
}


def _snap_to_palette(canvas: Canvas, tag: TagType) -> Canvas:
    """Every pixel as its nearest palette colour (OpenCV 5 anti-aliases text whatever the line type)."""
    palette = np.array([_bgr(COLOUR_NAMES.index(name), tag) for name in tag.colortable], dtype=np.int16)
    pixels = canvas.astype(np.int16)
    distances = np.stack([np.abs(pixels - colour).sum(axis=2) for colour in palette])
    return np.asarray(palette[distances.argmin(axis=0)], dtype=np.uint8)


def render_image(elements: Sequence[Element], tag_type: TagType) -> Canvas:
    """The elements drawn in order on a white ``height x width`` BGR canvas using only the tag's colours."""
    canvas = np.empty((tag_type.height, tag_type.width, 3), dtype=np.uint8)
    canvas[:, :] = _bgr(0, tag_type)
    for element in elements:
        ((kind, args),) = element.items()
        draw = _DRAW.get(kind)
        if draw is None:
            raise ContentError(f"cannot draw {kind!r} elements into an image (drawable: {', '.join(_DRAW)})")
        try:
            draw(canvas, args, tag_type)
        except (IndexError, ValueError, TypeError) as err:
            raise ContentError(f"malformed {kind} element {args!r}: {err}") from err
    return _snap_to_palette(canvas, tag_type)


def jpeg_frame_marker(data: bytes) -> int | None:
    """The start-of-frame marker of a JPEG (0xC0 baseline, 0xC2 progressive, ...), or ``None`` if there is none."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in _SOF_MARKERS:
            return marker
        if marker == _START_OF_SCAN:
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def encode_jpeg(canvas: Canvas) -> bytes:
    """A canvas as a baseline (sequential) JPEG without chroma subsampling, so red edges stay red."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_PROGRESSIVE, 0, cv2.IMWRITE_JPEG_OPTIMIZE, 0,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    try:
        ok, encoded = cv2.imencode(".jpg", canvas, params)
    except cv2.error as err:
        raise ContentError(f"JPEG encoding failed: {err}") from err
    if not ok:
        raise ContentError("JPEG encoding failed")
    data = bytes(encoded.tobytes())
    marker = jpeg_frame_marker(data)
    if marker != SOF_BASELINE:
        raise ContentError(f"encoder produced a non-baseline JPEG (frame marker {marker!r}); the AP would not show it")
    return data


def render_jpeg(elements: Sequence[Element], tag_type: TagType) -> bytes:
    """The elements as the baseline JPEG to send to ``/imgupload``, exactly ``tag_type.width x height`` pixels."""
    canvas = render_image(elements, tag_type)
    if canvas.shape[:2] != (tag_type.height, tag_type.width):
        raise ContentError(f"image is {canvas.shape[1]}x{canvas.shape[0]}, {tag_type.label} needs its exact size")
    return encode_jpeg(canvas)
