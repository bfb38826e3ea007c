"""Shelf-label content (pure): HQ price items, OEPL tag types and price templates, rendered to OEPL JSON elements.

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
without it is drawn black. Text widths are estimates per font size, erring wide, since the AP's fonts are not here.
"""

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from drivers.barcode.gs1 import GTIN_LENGTHS, check_digit_error, to_gtin14
from edge.config.base import StrictModel
from edge.errors import ConfigError

Element: TypeAlias = dict[str, list[int | float | str]]
"""One OEPL drawing object as sent to ``/jsonupload``, e.g. ``{"box": [0, 0, 296, 30, 2]}``."""
Box: TypeAlias = tuple[int, int, int, int]
"""Pixels an element covers: ``(x0, y0, x1, y1)``, x1 and y1 exclusive."""


class ContentError(ConfigError):
    """Label content cannot be made: a tag type or template is missing or invalid, or a value does not fit it."""


# --- money ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurrencyFormat:
    """How a currency is written on a shelf label."""

    symbol: str
    decimals: int
    symbol_first: bool
    decimal_sep: str = "."
    group_sep: str = ","
    spaced: bool = False


CURRENCIES: Final[Mapping[str, CurrencyFormat]] = {
    "EUR": CurrencyFormat("€", 2, symbol_first=False, decimal_sep=",", group_sep=".", spaced=True),
    "USD": CurrencyFormat("$", 2, symbol_first=True),
    "GBP": CurrencyFormat("£", 2, symbol_first=True),
    "SEK": CurrencyFormat("kr", 2, symbol_first=False, decimal_sep=",", group_sep=" ", spaced=True),
    "NOK": CurrencyFormat("kr", 2, symbol_first=False, decimal_sep=",", group_sep=" ", spaced=True),
    "DKK": CurrencyFormat("kr.", 2, symbol_first=False, decimal_sep=",", group_sep=".", spaced=True),
    "CHF": CurrencyFormat("CHF", 2, symbol_first=True, group_sep="'", spaced=True),
    "PLN": CurrencyFormat("zł", 2, symbol_first=False, decimal_sep=",", group_sep=" ", spaced=True),
    "CZK": CurrencyFormat("Kč", 2, symbol_first=False, decimal_sep=",", group_sep=" ", spaced=True),
    "JPY": CurrencyFormat("¥", 0, symbol_first=True),
    "CNY": CurrencyFormat("¥", 2, symbol_first=True),
}
MAX_PRICE: Final = Decimal(1_000_000)  # six integer digits: what the templates are laid out for
Unit = Literal["kg", "100g", "l", "100ml", "m", "piece"]
UNIT_LABELS: Final[Mapping[str, str]] = {"kg": "kg", "100g": "100 g", "l": "l", "100ml": "100 ml", "m": "m",
                                         "piece": "pc"}


def format_amount(value: Decimal, currency: str) -> str:
    """A price without its symbol, with the currency's decimals and separators: ``1.234,50`` for EUR."""
    fmt = CURRENCIES[currency]
    rounded = value.quantize(Decimal(1).scaleb(-fmt.decimals), rounding=ROUND_HALF_UP)
    return f"{rounded:,.{fmt.decimals}f}".translate({ord(","): fmt.group_sep, ord("."): fmt.decimal_sep})


def format_money(value: Decimal, currency: str) -> str:
    """A price with its symbol where the currency puts it: ``12,90 €``, ``$12.90``, ``CHF 12.90``, ``¥1,280``."""
    fmt = CURRENCIES[currency]
    space = " " if fmt.spaced else ""
    amount = format_amount(value, currency)
    return f"{fmt.symbol}{space}{amount}" if fmt.symbol_first else f"{amount}{space}{fmt.symbol}"


def _to_decimal(value: object) -> object:
    """JSON numbers and decimal strings as ``Decimal``; floats go through their shortest repr, not binary."""
    if isinstance(value, bool):
        raise ValueError("must be a number or a decimal string, not true/false")
    try:
        if isinstance(value, float):
            return Decimal(repr(value))
        if isinstance(value, int | str):
            return Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    return value


def _to_datetime(value: object) -> object:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    return value


Money = Annotated[Decimal, BeforeValidator(_to_decimal)]
Timestamp = Annotated[datetime, BeforeValidator(_to_datetime)]
_ITEM_CONFIG: Final = ConfigDict(strict=True, extra="forbid", frozen=True)


def _check_money(value: Decimal, currency: str | None) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{value} must be a finite amount of at least 0")
    if value >= MAX_PRICE:
        raise ValueError(f"{value} is too large: labels show at most 6 integer digits")
    fmt = CURRENCIES.get(currency or "")
    if fmt is not None and value != value.quantize(Decimal(1).scaleb(-fmt.decimals)):
        raise ValueError(f"{value} has more decimals than {currency} uses ({fmt.decimals})")
    return value


class UnitPrice(BaseModel):
    """A comparison price: the item's price per kilogram, per 100 g, per litre, ... in the item's currency."""

    model_config = _ITEM_CONFIG

    value: Money = Field(description="Price per unit, in the item's currency")
    unit: Unit = Field(description="The unit: kg, 100g, l, 100ml, m or piece")


class PriceItem(BaseModel):
    """One item of an HQ price update; validation messages name the field and go back to HQ."""

    model_config = _ITEM_CONFIG

    gtin: str = Field(description="GTIN-8/12/13/14 with a valid check digit; stored as GTIN-14")
    name: str | None = Field(default=None, description="Product name, at most 80 characters")
    currency: str = Field(description="ISO 4217 code, one of CURRENCIES")
    price: Money = Field(description="Regular price, in the currency's decimals")
    promo_price: Money | None = Field(default=None, description="Promotion price, lower than the regular price")
    unit_price: UnitPrice | None = Field(default=None, description="Comparison price per unit")
    valid_from: Timestamp | None = Field(default=None, description="When the price applies, with a UTC offset")

    @field_validator("gtin")
    @classmethod
    def _check_gtin(cls, gtin: str) -> str:
        if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in GTIN_LENGTHS:
            raise ValueError(f"{gtin!r} is not a GTIN: expected 8, 12, 13 or 14 digits")
        error = check_digit_error(gtin)
        if error is not None:
            raise ValueError(f"{gtin}: {error}")
        return to_gtin14(gtin)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str | None) -> str | None:
        if name is None:
            return None
        cleaned = " ".join(name.split())
        if not cleaned:
            raise ValueError("must not be blank (leave it out instead)")
        if len(cleaned) > 80:
            raise ValueError(f"is {len(cleaned)} characters long; at most 80")
        return cleaned

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, currency: str) -> str:
        code = currency.upper()
        if code not in CURRENCIES:
            raise ValueError(f"unknown currency {currency!r} (supported: {', '.join(sorted(CURRENCIES))})")
        return code

    @field_validator("price")
    @classmethod
    def _check_price(cls, price: Decimal, info: ValidationInfo) -> Decimal:
        return _check_money(price, info.data.get("currency"))

    @field_validator("promo_price")
    @classmethod
    def _check_promo(cls, promo: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if promo is None:
            return None
        _check_money(promo, info.data.get("currency"))
        price = info.data.get("price")
        if price is not None and promo >= price:
            raise ValueError(f"{promo} must be lower than the regular price {price}")
        return promo

    @field_validator("unit_price")
    @classmethod
    def _check_unit_price(cls, unit_price: UnitPrice | None, info: ValidationInfo) -> UnitPrice | None:
        if unit_price is not None:
            _check_money(unit_price.value, info.data.get("currency"))
        return unit_price

    @field_validator("valid_from")
    @classmethod
    def _check_valid_from(cls, moment: datetime | None) -> datetime | None:
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no UTC offset (add Z or +01:00)")
        return moment


def placeholder_values(item: PriceItem) -> dict[str, str | None]:
    """The text of every placeholder for ``item``; ``None`` where the item has no value."""
    unit = item.unit_price
    return {
        "name": item.name,
        "price": format_amount(item.price, item.currency),
        "promo_price": None if item.promo_price is None else format_amount(item.promo_price, item.currency),
        "unit_price": None if unit is None else f"{format_money(unit.value, item.currency)}/{UNIT_LABELS[unit.unit]}",
        "currency": CURRENCIES[item.currency].symbol,
        "currency_code": item.currency,
        "gtin": item.gtin,
        "valid_from": None if item.valid_from is None else item.valid_from.date().isoformat(),
    }


PLACEHOLDERS: Final = frozenset(("name", "price", "promo_price", "unit_price", "currency", "currency_code", "gtin",
                                 "valid_from"))
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


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


def _colour_index(value: int | float | str, tag: "TagType") -> int:
    index = int(value)
    return index if COLOUR_NAMES[index] in tag.colortable else BLACK


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
        names = set(_PLACEHOLDER.findall(value))
        if names - PLACEHOLDERS or "{" in _PLACEHOLDER.sub("", value) or "}" in _PLACEHOLDER.sub("", value):
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


def _fill(text: str, values: Mapping[str, str | None]) -> str | None:
    """``text`` with its placeholders filled, or ``None`` when one of them has no value."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        filled = values.get(match[1])
        missing = missing or filled is None
        # The AP replaces {var} in any text with its own variables: braces in HQ data must not reach it.
        return (filled or "").replace("{", "(").replace("}", ")")

    result = _PLACEHOLDER.sub(value, text)
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
