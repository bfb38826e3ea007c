"""Shelf-label content (pure): OEPL tag types and price templates, and a price item rendered to OEPL JSON elements.

A template, ``firmware_configs/esl/templates/<W>x<H>.json``, is data shared by every tag type of that resolution::

    {"comment": "...",
     "common":  [element, ...],    drawn first on every label
     "regular": [element, ...],    then these when the item has no promo price
     "promo":   [element, ...]}    or these when it has one

An element is one OEPL drawing object, ``{"text": [x, y, "{price}", "fonts/calibrib60", "black", 2]}`` (also
``textbox``, ``box``, ``rbox``, ``line``, ``triangle``, ``circle``), plus optional layout keys that are resolved
here and never sent to the AP:

    when         placeholder name(s) that must have a value for the element to be drawn
    max_width    pixels available to a text (never more than the room to the tag's edge)
    fonts        smaller fonts to fall back to, in order, when the text does not fit
    max_lines    wrap the text onto up to this many lines (default 1)
    line_height  pixels between wrapped lines (default: the font's line height)
    shorten      cut the text with "..." when even the last font is too wide (default: ContentError instead)
    strike       draw the text struck through (the old price on a promo label)

Placeholders: {name} {price} {promo_price} {unit_price} {currency} {currency_code} {gtin} {valid_from}; a text whose
placeholder has no value is left out. Colours: "white", "black", "red", "yellow" (or 0-3); red or yellow on a tag
without it is drawn black. Items and their placeholder texts are in ``items``; fonts, text fitting and element
geometry in ``drawing``.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from drivers.esl.drawing import (
    BLACK,
    COLOUR_NAMES,
    FONTS,
    SLOTS,
    ColourName,
    ContentError,
    Element,
    colour_slots,
    element_bounds,
    font_key,
    font_metrics,
    shorten_text,
    text_bounds,
    wrap_text,
)
from drivers.esl.items import PLACEHOLDER, PLACEHOLDERS, PriceItem, placeholder_values
from edge.config.base import StrictModel

# --- tag types -----------------------------------------------------------------------------------------------

Channel = Annotated[int, Field(ge=0, le=255)]


class TagType(StrictModel):
    """One OEPL tag type (``firmware_configs/esl/tagtypes/XX.json``, XX the hwType in hex)."""

    hw_type: int = Field(ge=0, le=255, description="OEPL hwType; taken from the file name")
    name: str = Field(min_length=1, description="Model name, e.g. 'M2 2.9\"'")
    width: int = Field(gt=0, le=4096, description="Native width in pixels (images are uploaded at exactly this)")
    height: int = Field(gt=0, le=4096, description="Native height in pixels")
    bpp: Literal[1, 2] = Field(description="Bits per pixel of the panel: 1 black/white, 2 with red and/or yellow")
    rotatebuffer: int = Field(default=0, ge=0, le=3, description="Quarter turns the AP applies to the buffer")
    colortable: dict[ColourName, tuple[Channel, Channel, Channel]] = Field(
        description="Colours the panel shows, name to [r, g, b], in OEPL palette order (white, black, ...)"
    )

    @field_validator("colortable")
    @classmethod
    def _check_palette(cls, table: dict[str, tuple[int, int, int]], info: ValidationInfo) -> dict[str, Any]:
        names = list(table)
        if names[:2] != ["white", "black"]:
            raise ValueError(f"must start with white, black (got {', '.join(names)})")
        bpp = info.data.get("bpp")
        if bpp is not None and len(names) > 2**bpp:
            raise ValueError(f"has {len(names)} colours but bpp {bpp} holds {2**bpp}")
        return table

    @property
    def resolution(self) -> tuple[int, int]:
        """``(width, height)``: the key of this tag type's template."""
        return self.width, self.height

    @property
    def label(self) -> str:
        """How errors name this tag type: ``hwType 0x05 (640x384)``."""
        return f"hwType 0x{self.hw_type:02X} ({self.width}x{self.height})"


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ContentError(f"{path}: cannot read: {err.strerror}") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ContentError(f"{path}: invalid JSON: {err}") from err


def _json_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ContentError(f"{directory}: no such directory")
    return sorted(directory.glob("*.json"))


def load_tag_types(directory: Path) -> dict[int, TagType]:
    """Every ``XX.json`` tag type in ``directory`` by hwType; ``ContentError`` naming the file and key if invalid."""
    tag_types: dict[int, TagType] = {}
    for path in _json_files(directory):
        if not re.fullmatch(r"[0-9A-F]{2}", path.stem):
            raise ContentError(f"{path}: name must be the hwType as 2 upper-case hex digits, e.g. 2B.json")
        data = _read_json(path)
        if not isinstance(data, dict) or "hw_type" in data:
            raise ContentError(f"{path}: must be a JSON object without 'hw_type' (the file name gives it)")
        try:
            tag_types[int(path.stem, 16)] = TagType.model_validate({**data, "hw_type": int(path.stem, 16)})
        except ValidationError as err:
            problems = [f"{path}: {'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg'].removeprefix('Value error, ')}"
                        for e in err.errors()]
            raise ContentError(problems[0], problems) from err
    return tag_types


# --- templates -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateElement:
    """One drawing object of a template with its layout rules; ``where`` names it in errors."""

    kind: str
    args: tuple[int | float | str, ...]
    where: str
    when: tuple[str, ...] = ()
    max_width: int | None = None
    fonts: tuple[str, ...] = ()
    max_lines: int = 1
    line_height: int | None = None
    shorten: bool = False
    strike: bool = False


@dataclass(frozen=True, slots=True)
class Template:
    """The price-label layout for one resolution."""

    width: int
    height: int
    source: str
    common: tuple[TemplateElement, ...]
    regular: tuple[TemplateElement, ...]
    promo: tuple[TemplateElement, ...]


_LAYOUT_KEYS: Final = ("when", "max_width", "fonts", "max_lines", "line_height", "shorten", "strike")
_SECTIONS: Final = ("common", "regular", "promo")


def _arg(slot: str, value: object, where: str) -> int | float | str:
    """One element argument checked against its slot type; colours become their OEPL number."""
    if slot == "c":
        if isinstance(value, str) and value in COLOUR_NAMES:
            return COLOUR_NAMES.index(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(COLOUR_NAMES):
            return value
        raise ContentError(f"{where}: colour must be one of {', '.join(COLOUR_NAMES)} or 0-3, got {value!r}")
    if slot in "ia":
        if not isinstance(value, int) or isinstance(value, bool) or (slot == "a" and value not in (0, 1, 2)):
            raise ContentError(f"{where}: expected {'align 0, 1 or 2' if slot == 'a' else 'an integer'}, got {value!r}")
        return value
    if slot == "n":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ContentError(f"{where}: expected a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ContentError(f"{where}: expected a string, got {value!r}")
    if slot == "f":
        if font_key(value) not in FONTS:
            raise ContentError(f"{where}: unknown font {value!r} (known: {', '.join(FONTS)})")
    else:
        names = set(PLACEHOLDER.findall(value))
        if names - PLACEHOLDERS or "{" in PLACEHOLDER.sub("", value) or "}" in PLACEHOLDER.sub("", value):
            raise ContentError(f"{where}: unknown placeholder or stray brace in {value!r} "
                               f"(placeholders: {', '.join(sorted(PLACEHOLDERS))})")
    return value


def _parse_element(obj: object, where: str) -> TemplateElement:
    if not isinstance(obj, dict):
        raise ContentError(f"{where}: must be an object such as {{\"box\": [x, y, w, h, colour]}}")
    kinds = [key for key in obj if key in SLOTS]
    unknown = sorted(set(obj) - set(SLOTS) - set(_LAYOUT_KEYS))
    if unknown or len(kinds) != 1:
        raise ContentError(f"{where}: needs exactly one of {', '.join(SLOTS)} plus optional {', '.join(_LAYOUT_KEYS)}"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    kind = kinds[0]
    required, optional = SLOTS[kind]
    raw = obj[kind]
    if not isinstance(raw, list) or not len(required) <= len(raw) <= len(required) + len(optional):
        raise ContentError(f"{where}.{kind}: expects {len(required)} to {len(required) + len(optional)} arguments")
    args = tuple(_arg(slot, value, f"{where}.{kind}[{i}]") for i, (slot, value) in enumerate(zip(required + optional,
                                                                                              raw, strict=False)))
    layout = {key: obj[key] for key in _LAYOUT_KEYS if key in obj}
    if kind != "text" and set(layout) - {"when"}:
        raise ContentError(f"{where}: only text elements take {', '.join(sorted(set(layout) - {'when'}))}")
    when = layout.get("when", [])
    when = [when] if isinstance(when, str) else when
    fonts = layout.get("fonts", [])
    checks = (
        ("when", isinstance(when, list) and all(w in PLACEHOLDERS for w in when), "placeholder name(s)"),
        ("fonts", isinstance(fonts, list) and all(isinstance(f, str) and font_key(f) in FONTS for f in fonts),
         f"a list of known fonts ({', '.join(FONTS)})"),
        ("max_width", _positive(layout.get("max_width", 1)), "a positive integer"),
        ("max_lines", _positive(layout.get("max_lines", 1)), "a positive integer"),
        ("line_height", _positive(layout.get("line_height", 1)), "a positive integer"),
        ("shorten", isinstance(layout.get("shorten", False), bool), "true or false"),
        ("strike", isinstance(layout.get("strike", False), bool), "true or false"),
    )
    for key, ok, expected in checks:
        if not ok:
            raise ContentError(f"{where}.{key}: must be {expected}, got {layout[key]!r}")
    return TemplateElement(kind, args, where, tuple(when), layout.get("max_width"), tuple(fonts),
                           layout.get("max_lines", 1), layout.get("line_height"), layout.get("shorten", False),
                           layout.get("strike", False))


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_inside(element: TemplateElement, width: int, height: int) -> None:
    """Fixed geometry lies on the tag; a text's anchor is on it and every font's line, at every line, fits."""
    if element.kind == "text":
        x, y, font = int(element.args[0]), int(element.args[1]), str(element.args[3])
        baseline = _baseline(y, font)
        for candidate in (font, *element.fonts):
            metrics = font_metrics(candidate)
            top = baseline - metrics.ascent
            lines = element.max_lines - 1
            bottom = top + lines * (element.line_height or metrics.line_height) + metrics.line_height
            if not (0 <= x <= width and top >= 0 and bottom <= height):
                raise ContentError(f"{element.where}: text in {candidate} spans y {top}..{bottom} at x {x}, "
                                   f"outside the {width}x{height} label")
        return
    x0, y0, x1, y1 = element_bounds({element.kind: list(element.args)})
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise ContentError(f"{element.where}: {element.kind} covers ({x0},{y0})-({x1},{y1}), "
                           f"outside the {width}x{height} label")


def _baseline(y: int, font: str) -> int:
    metrics = font_metrics(font)
    return y if metrics.from_baseline else y + metrics.ascent


def load_templates(directory: Path) -> dict[tuple[int, int], Template]:
    """Every ``<W>x<H>.json`` template in ``directory`` by resolution; ``ContentError`` naming file and key."""
    templates: dict[tuple[int, int], Template] = {}
    for path in _json_files(directory):
        match = re.fullmatch(r"([1-9][0-9]*)x([1-9][0-9]*)", path.stem)
        if match is None:
            raise ContentError(f"{path}: name must be the resolution, e.g. 296x128.json")
        width, height = int(match[1]), int(match[2])
        data = _read_json(path)
        if not isinstance(data, dict) or set(data) - {*_SECTIONS, "comment"} or set(_SECTIONS) - set(data):
            raise ContentError(f"{path}: must be an object with lists {', '.join(_SECTIONS)} and an optional comment")
        sections: dict[str, tuple[TemplateElement, ...]] = {}
        for section in _SECTIONS:
            items = data[section]
            if not isinstance(items, list):
                raise ContentError(f"{path}: {section}: must be a list of elements")
            sections[section] = tuple(_parse_element(obj, f"{path}: {section}[{i}]") for i, obj in enumerate(items))
            for element in sections[section]:
                _check_inside(element, width, height)
        templates[width, height] = Template(width, height, str(path), **sections)
    return templates


# --- rendering -----------------------------------------------------------------------------------------------


def _colour_index(value: int | float | str, tag: TagType) -> int:
    index = int(value)
    return index if COLOUR_NAMES[index] in tag.colortable else BLACK


def _fill(text: str, values: Mapping[str, str | None]) -> str | None:
    """``text`` with its placeholders filled, or ``None`` when one of them has no value."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        filled = values.get(match[1])
        missing = missing or filled is None
        # The AP replaces {var} in any text with its own variables: braces in HQ data must not reach it.
        return (filled or "").replace("{", "(").replace("}", ")")

    result = PLACEHOLDER.sub(value, text)
    return None if missing else result


def _room(x: int, align: int, width: int) -> int:
    return width - x if align == 0 else 2 * min(x, width - x) if align == 1 else x


def _fit(element: TemplateElement, text: str, width: int) -> tuple[list[str], str]:
    fonts = (str(element.args[3]), *element.fonts)
    for font in fonts:
        lines = wrap_text(text, font, width, element.max_lines)
        if lines is not None:
            return lines, font
    if not element.shorten:
        raise ContentError(f"{element.where}: {text!r} does not fit {width} px in {', '.join(fonts)}")
    return shorten_text(text, fonts[-1], width, element.max_lines), fonts[-1]


def _render_text(element: TemplateElement, values: Mapping[str, str | None], tag: TagType) -> list[Element]:
    x, y, raw, first_font, colour, *rest = element.args
    text = _fill(str(raw), values)
    if text is None:
        return []
    align = int(rest[0]) if rest else 0
    width = min(element.max_width or tag.width, _room(int(x), align, tag.width))
    lines, font = _fit(element, text, width)
    metrics = font_metrics(font)
    top = _baseline(int(y), str(first_font)) - metrics.ascent
    step = element.line_height or metrics.line_height
    tail = [_colour_index(v, tag) if i == 2 else v for i, v in enumerate(rest)]  # align, size, background
    out: list[Element] = []
    for i, line in enumerate(lines):
        line_y = top + i * step + (metrics.ascent if metrics.from_baseline else 0)
        out.append({"text": [x, line_y, line, font, _colour_index(colour, tag), *tail]})
        if element.strike:
            out.extend(_strike(int(x), line_y, line, font, align, _colour_index(colour, tag)))
    return out


def _strike(x: int, y: int, text: str, font: str, align: int, colour: int) -> list[Element]:
    """Lines through the middle of the digits of a one-line text, thicker for bigger fonts."""
    x0, top, x1, _ = text_bounds(x, y, text, font, align)
    metrics = font_metrics(font)
    middle = top + metrics.ascent - round(0.35 * metrics.size)
    thickness = max(1, metrics.size // 12)
    return [{"line": [x0, middle - thickness // 2 + i, x1 - 1, middle - thickness // 2 + i, colour]}
            for i in range(thickness)]


def render_elements(elements: Iterable[TemplateElement], values: Mapping[str, str | None],
                    tag: TagType) -> list[Element]:
    """Template elements as OEPL elements for ``tag``: conditions applied, texts filled and fitted, colours mapped."""
    out: list[Element] = []
    for element in elements:
        if any(values.get(name) is None for name in element.when):
            continue
        if element.kind == "text":
            out.extend(_render_text(element, values, tag))
            continue
        args = list(element.args)
        for slot in colour_slots(element.kind):
            if slot < len(args):
                args[slot] = _colour_index(args[slot], tag)
        if element.kind == "textbox":
            text = _fill(str(args[4]), values)
            if text is None:
                continue
            args[4] = text
        out.append({element.kind: args})
    return out


def render_json(item: PriceItem, tag_type: TagType, templates: Mapping[tuple[int, int], Template]) -> list[Element]:
    """The OEPL JSON elements showing ``item`` on a ``tag_type`` label, in drawing order."""
    template = templates.get(tag_type.resolution)
    if template is None:
        raise ContentError(f"no template for {tag_type.label}")
    variant = template.promo if item.promo_price is not None else template.regular
    return render_elements(chain(template.common, variant), placeholder_values(item), tag_type)


def json_payload(elements: Sequence[Element]) -> bytes:
    """The exact bytes sent as the ``json`` form field of ``/jsonupload``: compact UTF-8, in element order."""
    return json.dumps(list(elements), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def content_hash(payload: bytes) -> str:
    """MD5 hex of an upload, the key the AP de-duplicates on (not a security hash)."""
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()
