"""What the AP draws (pure): its fonts and their estimated metrics, fitting text into a width, the OEPL element
kinds with their argument slots, colours, and the pixels an element covers.

The AP's fonts are not here, so text widths are estimates per font size that err wide: a price that fits here fits
on the label. Templates (``content``) and images (``image``) both lay text out with these same estimates, so a JSON
label and a JPEG label show the same layout.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from edge.errors import ConfigError

Element: TypeAlias = dict[str, list[int | float | str]]
"""One OEPL drawing object as sent to ``/jsonupload``, e.g. ``{"box": [0, 0, 296, 30, 2]}``."""
Box: TypeAlias = tuple[int, int, int, int]
"""Pixels an element covers: ``(x0, y0, x1, y1)``, x1 and y1 exclusive."""


class ContentError(ConfigError):
    """Label content cannot be made: a font, tag type or template is missing or invalid, or a value does not fit.

    Defined here, below ``content`` and ``image``, because looking up a font raises it too."""


# --- fonts ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FontMetrics:
    """Estimated metrics of an AP font; vlw fonts are drawn from the top of the line, u8g2 fonts from the baseline."""

    size: int
    ascent: int
    descent: int
    from_baseline: bool
    width_scale: float = 1.0
    advance: int | None = None  # monospace u8g2 fonts

    @property
    def line_height(self) -> int:
        """Pixels from the top of one line to the next."""
        return self.ascent + self.descent


def _vlw(size: int, width_scale: float = 1.0) -> FontMetrics:
    return FontMetrics(size, math.ceil(0.95 * size), math.ceil(0.25 * size), False, width_scale)


# The smooth (.vlw) fonts in the AP's data/fonts and the u8g2 fonts built into its firmware.
FONTS: Final[Mapping[str, FontMetrics]] = {
    **{f"bahnschrift{n}": _vlw(n) for n in (20, 30, 70)},
    **{f"calibrib{n}": _vlw(n, 0.95) for n in (16, 30, 40, 50, 60, 62, 80, 100, 120, 150)},
    "twcondensed20": _vlw(20, 0.8),
    "tahoma9": _vlw(9),
    "tahoma11": _vlw(11),
    "REFSAN12": _vlw(12),
    "glasstown_nbp_tf": FontMetrics(12, 10, 3, True, advance=6),
    "t0_14b_tf": FontMetrics(14, 11, 3, True, advance=8),
    "7x14_tf": FontMetrics(14, 11, 3, True, advance=7),
}
_NARROW: Final = frozenset(" .,:;'!|()[]iljtfrI1")
_WIDE: Final = frozenset("MWmw@%&")


def font_key(font: str) -> str:
    """A font name as the AP accepts it (``fonts/calibrib30``, ``calibrib30.vlw``) reduced to its FONTS key."""
    return font.removeprefix("/").removeprefix("fonts/").removesuffix(".vlw")


def font_metrics(font: str) -> FontMetrics:
    """Estimated metrics of an AP font; ``ContentError`` for a font the AP does not ship."""
    metrics = FONTS.get(font_key(font))
    if metrics is None:
        raise ContentError(f"unknown font {font!r} (known: {', '.join(FONTS)})")
    return metrics


def _em(char: str) -> float:
    if char in _NARROW:
        return 0.34
    if char in _WIDE:
        return 0.92
    if not char.isascii():
        return 0.75
    return 0.7 if char.isupper() else 0.58


def text_width(text: str, font: str) -> int:
    """Estimated width of ``text`` in ``font``, in pixels, erring wide."""
    metrics = font_metrics(font)
    if metrics.advance is not None:
        return metrics.advance * len(text)
    return math.ceil(sum(_em(c) for c in text) * metrics.size * metrics.width_scale)


def wrap_text(text: str, font: str, width: int, max_lines: int) -> list[str] | None:
    """Greedy word wrap into at most ``max_lines`` lines of at most ``width`` px, or ``None`` when it needs more."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, font) <= width:
            current = candidate
        elif current and text_width(word, font) <= width:
            lines.append(current)
            current = word
        else:
            return None
    lines.append(current)
    return lines if len(lines) <= max_lines else None


def _take_line(text: str, font: str, width: int) -> tuple[str, str]:
    """The longest run of whole words (or, for one overlong word, of characters) that fits, and the rest."""
    words = text.split(" ")
    taken = 0
    while taken < len(words) and text_width(" ".join(words[: taken + 1]), font) <= width:
        taken += 1
    if taken:
        return " ".join(words[:taken]), " ".join(words[taken:])
    end = max(1, next((n for n in range(len(text), 0, -1) if text_width(text[:n], font) <= width), 1))
    return text[:end], text[end:].lstrip()


def _ellipsize(text: str, font: str, width: int) -> str:
    if text_width(text, font) <= width:
        return text
    for end in range(len(text) - 1, 0, -1):
        candidate = text[:end].rstrip(" ,.-") + "..."
        if text_width(candidate, font) <= width:
            return candidate
    return "..." if text_width("...", font) <= width else ""


def shorten_text(text: str, font: str, width: int, max_lines: int) -> list[str]:
    """``text`` wrapped into ``max_lines`` lines of ``width`` px, the last one cut with "..." if needed."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines - 1:
        line, rest = _take_line(rest, font, width)
        lines.append(line)
    if rest or not lines:
        lines.append(_ellipsize(rest, font, width))
    return lines


def text_bounds(x: int, y: int, text: str, font: str, align: int) -> Box:
    """Pixels a one-line ``text`` element covers; align 0 left, 1 centre, 2 right of ``x`` (TFT_eSPI datums)."""
    metrics = font_metrics(font)
    width = text_width(text, font)
    x0 = x if align == 0 else x - (width + 1) // 2 if align == 1 else x - width
    top = y - metrics.ascent if metrics.from_baseline else y
    return x0, top, x0 + width, top + metrics.line_height


# --- colours and elements ------------------------------------------------------------------------------------

ColourName = Literal["white", "black", "red", "yellow"]
COLOUR_NAMES: Final[tuple[ColourName, ...]] = ("white", "black", "red", "yellow")  # OEPL colour numbers 0-3
BLACK: Final = 1
# Per drawing kind: slot types of the required and of the optional arguments.
# i int, n number, s text, f font, c colour, a align (0-2).
SLOTS: Final[Mapping[str, tuple[str, str]]] = {
    "text": ("iisfc", "aic"),  # x, y, text, font, colour | align, size, background
    "textbox": ("iiiisfc", "na"),  # x, y, w, h, text, font, colour | line height factor, align
    "box": ("iiiic", "ci"),  # x, y, w, h, fill | border colour, border width
    "rbox": ("iiiiic", "ci"),  # x, y, w, h, radius, fill | border colour, border width
    "line": ("iiiic", ""),  # x1, y1, x2, y2, colour
    "triangle": ("iiiiiic", ""),  # three corners, fill
    "circle": ("iiic", "ci"),  # x, y, radius, fill | border colour, border width
}


def colour_slots(kind: str) -> list[int]:
    """Argument positions holding a colour in a ``kind`` element."""
    required, optional = SLOTS[kind]
    return [i for i, slot in enumerate(required + optional) if slot == "c"]


def element_bounds(element: Element) -> Box:
    """Pixels a rendered element covers, from its geometry (text: estimated from its font)."""
    ((kind, args),) = element.items()
    v = [a if isinstance(a, int) else 0 for a in args]
    if kind == "text":
        align = int(args[5]) if len(args) > 5 else 0
        return text_bounds(v[0], v[1], str(args[2]), str(args[3]), align)
    if kind in ("textbox", "box", "rbox"):
        return v[0], v[1], v[0] + v[2], v[1] + v[3]
    if kind == "circle":
        return v[0] - v[2], v[1] - v[2], v[0] + v[2] + 1, v[1] + v[2] + 1
    xs, ys = v[0 : (4 if kind == "line" else 6) : 2], v[1 : (4 if kind == "line" else 6) : 2]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1

