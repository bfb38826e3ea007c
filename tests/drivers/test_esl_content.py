"""Shelf-label content: shipped tag types and templates, item validation, OEPL JSON elements and baseline JPEGs."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from drivers.esl.content import (
    TagType,
    Template,
    content_hash,
    json_payload,
    load_tag_types,
    load_templates,
    render_json,
)
from drivers.esl.drawing import COLOUR_NAMES, ContentError, Element, colour_slots, element_bounds, font_metrics
from drivers.esl.image import render_jpeg
from drivers.esl.items import PriceItem, format_money
from tests.test_conventions import IO_LIBRARIES, _imports

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "firmware_configs" / "esl"
WHITE, BLACK, RED, YELLOW = range(4)
# hwType -> (width, height, colours): the research table (esl_barcode.md §1.7), independent of the shipped files.
EXPECTED = {
    0x00: (152, 152, "BWR"), 0x01: (296, 128, "BWR"), 0x02: (400, 300, "BWR"), 0x03: (212, 104, "BWR"),
    0x05: (640, 384, "BWR"), 0x26: (640, 384, "BW"), 0x30: (200, 200, "BWR"), 0x31: (296, 160, "BWR"),
    0x32: (360, 184, "BWR"), 0x33: (384, 168, "BWR"), 0x34: (400, 300, "BWR"), 0x35: (600, 448, "BWR"),
    0x36: (800, 480, "BWR"), 0x37: (960, 640, "BWR"), 0x40: (384, 168, "BW"), 0x43: (144, 200, "BWR"),
    0x2B: (384, 168, "BWRY"), 0x54: (256, 128, "BW"), 0x55: (256, 128, "BWR"),
}
HW_IDS = sorted(EXPECTED)
TagTypes = dict[int, TagType]
Templates = dict[tuple[int, int], Template]
IDS = [f"{hw:02X}" for hw in HW_IDS]
BASE: dict[str, Any] = {"gtin": "4006381333931", "name": "Bio Vollmilch 3,8% Fett", "price": "1.49", "currency": "EUR"}
# Widest case the templates must hold: 80 characters of wide letters, six-digit prices, the widest symbol (CHF).
WORST: dict[str, Any] = {
    "gtin": "4006381333931", "name": ("WWMW Mmmwm " * 8)[:80], "price": "999999.99", "promo_price": "999999.98",
    "unit_price": {"value": "999999.99", "unit": "100ml"}, "currency": "CHF", "valid_from": "2026-03-01T06:00:00Z",
}


@pytest.fixture(scope="module")
def tag_types() -> TagTypes:
    return load_tag_types(CONTENT / "tagtypes")


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(CONTENT / "templates")


def item(**changes: Any) -> PriceItem:
    return PriceItem.model_validate({**BASE, **changes})


def texts(elements: list[Element]) -> list[list[Any]]:
    return [e["text"] for e in elements if "text" in e]


def the_text(elements: list[Element], content: str) -> list[Any]:
    matches = [t for t in texts(elements) if t[2] == content]
    assert len(matches) == 1, f"expected one text {content!r} in {texts(elements)}"
    return matches[0]


def struck(elements: list[Element], text: list[Any]) -> bool:
    """Whether a line crosses ``text`` horizontally over most of its width."""
    x0, y0, x1, y1 = element_bounds({"text": text})
    lines = [[int(v) for v in e["line"][:4]] for e in elements if "line" in e]
    return any(y0 < ly1 < y1 and ly1 == ly2 and lx1 <= x0 + 2 and lx2 >= x1 - 3 for lx1, ly1, lx2, ly2 in lines)


# --- shipped tag types and templates ---------------------------------------------------------------------------


@pytest.mark.parametrize("hw", HW_IDS, ids=IDS)
def test_tagtypes__every_researched_type_ships_with_its_resolution_and_colours(hw: int,
                                                                                tag_types: TagTypes) -> None:
    width, height, colours = EXPECTED[hw]
    tag = tag_types[hw]
    names = {"B": "black", "W": "white", "R": "red", "Y": "yellow"}
    assert (tag.hw_type, tag.width, tag.height) == (hw, width, height)
    assert set(tag.colortable) == {names[c] for c in colours}
    assert tag.bpp == (1 if colours == "BW" else 2)
    assert tag.colortable["red" if "R" in colours else "black"] == ((255, 0, 0) if "R" in colours else (0, 0, 0))


def test_templates__one_per_resolution_of_the_shipped_tag_types(tag_types: TagTypes,
                                                                templates: Templates) -> None:
    assert set(templates) == {tag.resolution for tag in tag_types.values()}
    assert len(templates) == 14


PURE_CONTENT = ("content", "items", "drawing")


@pytest.mark.parametrize("module", PURE_CONTENT)
def test_content__modules_are_pure_and_import_only_each_other(module: str) -> None:
    imported = _imports(ROOT / "drivers" / "esl" / f"{module}.py")
    assert not {name for name in imported if name.split(".")[0] in IO_LIBRARIES | {"numpy"}}
    assert {name for name in imported if name.startswith("drivers.esl")} <= {f"drivers.esl.{m}" for m in PURE_CONTENT}


# --- rendering to OEPL JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hw", HW_IDS, ids=IDS)
@pytest.mark.parametrize("promo", [False, True], ids=["regular", "promo"])
def test_render_json__worst_case_item_stays_on_the_label_in_its_colours(
    hw: int, promo: bool, tag_types: TagTypes, templates: Templates
) -> None:
    tag = tag_types[hw]
    worst = PriceItem.model_validate(WORST if promo else {**WORST, "promo_price": None})
    elements = render_json(worst, tag, templates)
    allowed = {COLOUR_NAMES.index(name) for name in tag.colortable}
    for element in elements:
        ((kind, args),) = element.items()
        x0, y0, x1, y1 = element_bounds(element)
        assert x0 >= 0 and y0 >= 0 and x1 <= tag.width and y1 <= tag.height, f"{element} is off the {tag.label}"
        assert {args[i] for i in colour_slots(kind) if i < len(args)} <= allowed, f"{element} uses a colour not on it"
    shown = [t[2] for t in texts(elements)]
    assert not any("{" in s or "}" in s for s in shown), shown
    assert "999'999.98" in shown if promo else "999'999.99" in shown
    assert "CHF 999'999.99/100 ml" in shown
    assert any(s.endswith("...") for s in shown), "the 80-character name is shortened with an ellipsis"


@pytest.mark.parametrize("hw", HW_IDS, ids=IDS)
def test_render_json__promo_price_big_in_red_and_regular_price_small_and_struck(
    hw: int, tag_types: TagTypes, templates: Templates
) -> None:
    tag = tag_types[hw]
    regular = render_json(item(), tag, templates)
    promo = render_json(item(promo_price="0.99"), tag, templates)
    price, offer, old = the_text(regular, "1,49"), the_text(promo, "0,99"), the_text(promo, "1,49")
    assert font_metrics(offer[3]).size > font_metrics(old[3]).size
    assert offer[4] == (RED if "red" in tag.colortable else BLACK)
    assert price[4] == BLACK and old[4] == BLACK
    assert struck(promo, old) and not struck(regular, price)
    assert font_metrics(price[3]).size == max(font_metrics(t[3]).size for t in texts(regular))
    assert "PROMO" in [t[2] for t in texts(promo)] and "PROMO" not in [t[2] for t in texts(regular)]


def test_render_json__bw_tag_gets_black_where_the_template_says_red(tag_types: TagTypes,
                                                                   templates: Templates) -> None:
    promo = item(promo_price="0.99")
    bwr, bw = render_json(promo, tag_types[0x05], templates), render_json(promo, tag_types[0x26], templates)

    def colours(elements: list[Element]) -> list[Any]:
        return [args[i] for e in elements for kind, args in e.items() for i in colour_slots(kind) if i < len(args)]

    def red_as_black(elements: list[Element]) -> list[Element]:
        return [{kind: [BLACK if i in colour_slots(kind) and a == RED else a for i, a in enumerate(args)]
                 for kind, args in e.items()} for e in elements]

    assert the_text(bwr, "0,99")[4] == RED and the_text(bw, "0,99")[4] == BLACK
    assert RED in colours(bwr) and RED not in colours(bw)
    assert red_as_black(bwr) == bw  # same layout (both 640x384), only red became black


def test_render_json__unit_price_and_valid_from_lines_only_when_given(tag_types: TagTypes,
                                                                      templates: Templates) -> None:
    tag = tag_types[0x01]
    plain = [t[2] for t in texts(render_json(item(), tag, templates))]
    full = [t[2] for t in texts(render_json(item(unit_price={"value": "2.98", "unit": "kg"},
                                                 valid_from="2026-03-02T00:00:00+01:00"), tag, templates))]
    assert "2,98 €/kg" in full and "from 2026-03-02" in full
    assert len(full) == len(plain) + 2 and not any("€/" in s or "from" in s for s in plain)


def test_render_json__name_wraps_before_it_is_shortened(tag_types: TagTypes,
                                                        templates: Templates) -> None:
    name = "Bio Vollmilch 3,8% Fett frisch aus der Region Allgäu"
    shown = [t[2] for t in texts(render_json(item(name=name), tag_types[0x05], templates))]
    assert " ".join(shown[:2]) == name  # two lines on the 7.4" label
    small = [t[2] for t in texts(render_json(item(name=name), tag_types[0x01], templates))]
    assert small[0].endswith("...") and name.startswith(small[0].removesuffix("..."))


def test_render_json__braces_in_a_name_cannot_reach_the_ap_variables(tag_types: TagTypes,
                                                                     templates: Templates) -> None:
    shown = texts(render_json(item(name="Cola {ap_ip}"), tag_types[0x05], templates))
    assert shown[0][2] == "Cola (ap_ip)"


def test_render_json__missing_template_is_a_clear_error(tag_types: TagTypes) -> None:
    with pytest.raises(ContentError, match=r"^no template for hwType 0x05 \(640x384\)$"):
        render_json(item(), tag_types[0x05], {})


def test_json_payload__exact_deterministic_bytes_and_a_stable_md5(tag_types: TagTypes,
                                                                   templates: Templates) -> None:
    assert json_payload([{"box": [0, 0, 10, 10, 2]}]) == b'[{"box":[0,0,10,10,2]}]'
    assert content_hash(b'[{"box":[0,0,10,10,2]}]') == "af81b0edac1ed6bc94b075a9d9ee1607"
    first = json_payload(render_json(item(promo_price="0.99"), tag_types[0x01], templates))
    again = json_payload(render_json(item(promo_price="0.99"), tag_types[0x01], templates))
    other = json_payload(render_json(item(promo_price="0.98"), tag_types[0x01], templates))
    assert first == again and content_hash(first) == content_hash(again) != content_hash(other)
    assert "1,49 €".encode() not in first and "€".encode() in first and b"\\u" not in first  # raw UTF-8, compact
    assert json.loads(first) == render_json(item(promo_price="0.99"), tag_types[0x01], templates)


# --- price items -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"gtin": "4006381333932"}, "gtin", "bad check digit: expected 1, got 2"),
        ({"gtin": "40063813339"}, "gtin", "expected 8, 12, 13 or 14 digits"),
        ({"gtin": 4006381333931}, "gtin", "string"),
        ({"promo_price": "1.49"}, "promo_price", "must be lower than the regular price 1.49"),
        ({"promo_price": "2"}, "promo_price", "must be lower"),
        ({"currency": "XYZ"}, "currency", "unknown currency 'XYZ'"),
        ({"valid_from": "2026-03-01T06:00:00"}, "valid_from", "no UTC offset"),
        ({"price": "1.499"}, "price", "more decimals than EUR uses (2)"),
        ({"price": "1.5", "currency": "JPY"}, "price", "more decimals than JPY uses (0)"),
        ({"price": "-1"}, "price", "at least 0"),
        ({"price": "1000000"}, "price", "at most 6 integer digits"),
        ({"price": True}, "price", "not true/false"),
        ({"name": "x" * 81}, "name", "at most 80"),
        ({"unit_price": {"value": "1.2", "unit": "kilo"}}, "unit_price", "kg"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
    ids=["check-digit", "length", "not-a-string", "promo-equal", "promo-higher", "currency", "naive-time", "decimals",
         "yen-decimals", "negative", "too-big", "boolean", "name-length", "unit", "extra-field"],
)
def test_price_item__rejects_with_a_message_naming_the_field(changes: dict[str, Any], field: str,
                                                             message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        item(**changes)
    errors = caught.value.errors()
    assert [e["loc"][0] for e in errors] == [field]
    assert message in errors[0]["msg"]


def test_price_item__normalises_gtin_and_accepts_json_numbers_and_iso_times() -> None:
    parsed = item(gtin="96385074", price=12.9, promo_price=9, currency="usd", valid_from="2026-03-01T06:00:00Z",
                  name="  Cola \n Zero ")
    assert parsed.gtin == "00000096385074" and parsed.currency == "USD" and parsed.name == "Cola Zero"
    assert parsed.price == Decimal("12.9") and parsed.promo_price == Decimal(9)
    assert parsed.valid_from is not None and parsed.valid_from.utcoffset() is not None


@pytest.mark.parametrize(
    ("currency", "amount", "shown"),
    [("EUR", "1234.5", "1.234,50 €"), ("USD", "1234.5", "$1,234.50"), ("GBP", "12.9", "£12.90"),
     ("SEK", "12.9", "12,90 kr"), ("CHF", "1234.5", "CHF 1'234.50"), ("JPY", "1280", "¥1,280"),
     ("CNY", "12.9", "¥12.90")],
)
def test_format_money__symbol_decimals_and_separators_per_currency(currency: str, amount: str, shown: str) -> None:
    assert format_money(Decimal(amount), currency) == shown


# --- loading errors name the file and the key ------------------------------------------------------------------


def test_load_tag_types__errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    good = json.loads((CONTENT / "tagtypes" / "05.json").read_text(encoding="utf-8"))
    (tmp_path / "05.json").write_text(json.dumps({**good, "bpp": 3}), encoding="utf-8")
    with pytest.raises(ContentError, match=r"05\.json: bpp: "):
        load_tag_types(tmp_path)
    (tmp_path / "05.json").write_text(json.dumps({**good, "colortable": {"black": [0, 0, 0], "white": [255] * 3}}))
    with pytest.raises(ContentError, match=r"05\.json: colortable: must start with white, black \(got black, white\)"):
        load_tag_types(tmp_path)
    (tmp_path / "05.json").unlink()
    (tmp_path / "5.json").write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(ContentError, match=r"5\.json: name must be the hwType as 2 upper-case hex digits"):
        load_tag_types(tmp_path)


@pytest.mark.parametrize(
    ("element", "message"),
    [
        ({"text": [5, 5, "{price}", "fonts/comic12", "black", 0]}, r"promo\[0\]\.text\[3\]: unknown font"),
        ({"text": [5, 5, "{prize}", "fonts/bahnschrift20", "black"]}, r"promo\[0\]\.text\[2\]: unknown placeholder"),
        ({"text": [5, 5, "x", "fonts/bahnschrift20", "pink"]}, r"promo\[0\]\.text\[4\]: colour must be one of"),
        ({"box": [200, 0, 100, 10, "red"]}, r"promo\[0\]: box covers \(200,0\)-\(300,10\), outside the 296x128"),
        ({"text": [5, 120, "x", "fonts/bahnschrift20", "black"]}, r"promo\[0\]: text in fonts/bahnschrift20 spans"),
        ({"image": ["/a.jpg", 0, 0]}, r"promo\[0\]: needs exactly one of text"),
        ({"box": [0, 0, 10, 10, "red"], "strike": True}, r"promo\[0\]: only text elements take strike"),
    ],
    ids=["font", "placeholder", "colour", "box-outside", "text-outside", "unsupported", "layout-key"],
)
def test_load_templates__errors_name_the_file_and_the_key(tmp_path: Path, element: dict[str, Any],
                                                          message: str) -> None:
    (tmp_path / "296x128.json").write_text(json.dumps({"common": [], "regular": [], "promo": [element]}))
    with pytest.raises(ContentError, match=r"296x128\.json: " + message):
        load_templates(tmp_path)


# --- JPEG images -----------------------------------------------------------------------------------------------


def frame_markers(data: bytes) -> set[int]:
    """The SOFn markers in a JPEG's header segments (independent of drivers.esl.image)."""
    markers, i = set(), 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        if 0xC0 <= data[i + 1] <= 0xCF and data[i + 1] not in (0xC4, 0xC8, 0xCC):
            markers.add(data[i + 1])
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return markers


def decode(data: bytes) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def near(image: npt.NDArray[np.uint8], rgb: tuple[int, int, int], tolerance: int = 80) -> npt.NDArray[np.bool_]:
    bgr = np.array(rgb[::-1], dtype=np.int32)
    return np.asarray(np.abs(image.astype(np.int32) - bgr).sum(axis=-1) <= tolerance)


def test_frame_markers__tell_a_progressive_jpeg_from_a_baseline_one() -> None:
    canvas = np.full((16, 16, 3), 255, np.uint8)
    progressive = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    baseline = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_PROGRESSIVE, 0])[1].tobytes()
    assert frame_markers(progressive) == {0xC2} and frame_markers(baseline) == {0xC0}


@pytest.mark.parametrize("hw", HW_IDS, ids=IDS)
def test_render_jpeg__baseline_at_the_exact_size_in_the_palette_with_the_price_where_the_json_puts_it(
    hw: int, tag_types: TagTypes, templates: Templates
) -> None:
    tag = tag_types[hw]
    elements = render_json(item(promo_price="0.99", unit_price={"value": "1.49", "unit": "l"}), tag, templates)
    data = render_jpeg(elements, tag)
    markers = frame_markers(data)
    assert markers & {0xC0, 0xC1} and 0xC2 not in markers
    image = decode(data)
    assert image.shape == (tag.height, tag.width, 3)
    on_palette = np.zeros(image.shape[:2], dtype=bool)
    for rgb in tag.colortable.values():
        on_palette |= near(image, rgb)
    assert on_palette.mean() > 0.99
    ink = (255, 0, 0) if "red" in tag.colortable else (0, 0, 0)
    x0, y0, x1, y1 = element_bounds({"text": the_text(elements, "0,99")})
    assert near(image[y0:y1, x0:x1], ink).mean() > 0.08, "promo price ink missing from its region"
    drawn = np.zeros(image.shape[:2], dtype=bool)
    for element in elements:
        bx0, by0, bx1, by1 = element_bounds(element)
        drawn[max(0, by0 - 2) : by1 + 2, max(0, bx0 - 2) : bx1 + 2] = True
    assert near(image[~drawn], (255, 255, 255)).mean() > 0.995, "ink outside every element's bounds"
    if "red" not in tag.colortable:
        assert not near(image, (255, 0, 0), 120).any()
