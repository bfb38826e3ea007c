"""Realistic random scans for the scanner simulator, each with the exact result the decoder must produce.

Ground truth is computed here independently of ``drivers.barcode.protocol`` (check digits come from biip), so
comparing the decoder against it is a real test. The mix follows a Chinese or European grocery lane: mostly
EAN-13, some UPC-A and EAN-8, GS1-128/DataMatrix on fresh and pharma goods, scale labels when layouts are set.
"""

import random
import string
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

from biip.checksums import gs1_standard_check_digit

from drivers.barcode.config import RcnLayout
from simulators.barcode.model import SimScan

# Real GS1 member-organisation prefixes: China, Germany, Poland, Switzerland, Hong Kong, Taiwan, Korea, UK.
EAN13_PREFIXES = (
    *(str(p) for p in range(690, 700)),
    *(str(p) for p in range(400, 441)),
    *("590", "760", "489", "471", "880", "500"),
)
EAN8_PREFIXES = ("690", "691", "692", "693", "400", "590", "489")
# UPC-A number systems for ordinary trade items (2 is in-store, 3 drugs, 4 in-store, 5 coupons).
UPC_NUMBER_SYSTEMS = "01678"
BATCH_CHARS = string.ascii_uppercase + string.digits
GS = "\x1d"
# Retries before giving up on layouts that leave no room (a layout shadowed by an earlier one, say).
MAX_TRIES = 1000

Maker = Callable[[random.Random, bool, Sequence[RcnLayout]], SimScan]


def random_scan(rng: random.Random, *, bad_share: float, rcn_layouts: Sequence[RcnLayout]) -> SimScan:
    """One random scan; a ``bad_share`` fraction has a corrupted check digit and must be stored invalid."""
    bad = rng.random() < bad_share
    makers: list[tuple[Maker, int]] = [
        (_ean13, 30), (_ean8, 8), (_upc_a, 12), (_itf14, 4), (_gs1_128, 12), (_gs1_datamatrix, 8),
    ]
    if rcn_layouts:
        makers.append((_rcn, 20))
    if not bad:
        # Plain Code 128 / QR labels have no check digit to corrupt, so they only appear among good scans.
        makers.append((_other, 6))
    maker = rng.choices([m for m, _ in makers], weights=[w for _, w in makers])[0]
    return maker(rng, bad, rcn_layouts)


def check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of ``body`` as a character."""
    return str(gs1_standard_check_digit(body))


def corrupt_last(rng: random.Random, code: str) -> str:
    """``code`` with its last (check) digit replaced by a different digit."""
    return code[:-1] + str((int(code[-1]) + rng.randint(1, 9)) % 10)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _matches_a_layout(code: str, layouts: Sequence[RcnLayout]) -> bool:
    """Whether the decoder would read ``code`` as an in-store code (same length, literal digits equal)."""
    return any(
        len(lay.pattern) == len(code)
        and all(p == c for p, c in zip(lay.pattern, code, strict=True) if p.isdigit())
        for lay in layouts
    )


def _gtin_scan(
    rng: random.Random,
    bad: bool,
    layouts: Sequence[RcnLayout],
    *,
    aim: str,
    make: Callable[[], str],
    pad: str = "",
) -> SimScan:
    """A GTIN scan from ``make`` (a full code with check digit); ``pad`` is prepended to the sent payload."""
    for _ in range(MAX_TRIES):
        code = make()
        if not _matches_a_layout(pad + code, layouts):
            break
    else:
        raise ValueError(f"RCN layouts cover every {aim or 'plain'} code generated")
    if bad:
        return SimScan(aim=aim, payload=pad + corrupt_last(rng, code), valid=False, kind="gtin")
    return SimScan(aim=aim, payload=pad + code, valid=True, kind="gtin", gtin=code.zfill(14))


def _ean13_code(rng: random.Random) -> str:
    body = rng.choice(EAN13_PREFIXES) + _digits(rng, 9)
    return body + check_digit(body)


def _ean13(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    return _gtin_scan(rng, bad, layouts, aim="]E0", make=lambda: _ean13_code(rng))


def _ean8(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    def make() -> str:
        body = rng.choice(EAN8_PREFIXES) + _digits(rng, 4)
        return body + check_digit(body)

    return _gtin_scan(rng, bad, layouts, aim="]E4", make=make)


def _upc_a(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    def make() -> str:
        body = rng.choice(UPC_NUMBER_SYSTEMS) + _digits(rng, 10)
        return body + check_digit(body)

    # Scanners with AIM on send UPC-A as EAN-13 with a leading 0; without AIM many send the bare 12 digits.
    if rng.random() < 0.7:
        return _gtin_scan(rng, bad, layouts, aim="]E0", make=make, pad="0")
    return _gtin_scan(rng, bad, layouts, aim="", make=make)


def _itf14(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    def make() -> str:
        body = str(rng.randint(1, 8)) + _ean13_code(rng)[:-1]
        return body + check_digit(body)

    return _gtin_scan(rng, bad, layouts, aim="]I1", make=make)


def _expiry(rng: random.Random) -> str:
    """A valid YYMMDD; day 00 (end of month) is legal in GS1 dates."""
    day = rng.choice((0, *range(1, 29)))
    return f"{rng.randint(24, 32):02d}{rng.randint(1, 12):02d}{day:02d}"


def _gs1_fields(rng: random.Random) -> list[tuple[str, str, bool]]:
    """Optional (AI, value, variable length) fields after AI 01, in random order."""
    fields = [
        ("17", _expiry(rng), False),
        ("10", "".join(rng.choice(BATCH_CHARS) for _ in range(rng.randint(1, 20))), True),
        ("21", "".join(rng.choice(BATCH_CHARS) for _ in range(rng.randint(1, 20))), True),
        ("3103", f"{rng.randint(50, 25000):06d}", False),
        ("3922", str(rng.randint(100, 99999)), True),
    ]
    chosen = [field for field in fields if rng.random() < 0.5]
    rng.shuffle(chosen)
    return chosen


def _element_string(fields: list[tuple[str, str, bool]]) -> str:
    """AIs joined as scanners send them: GS after every variable-length field that is not last."""
    parts = []
    for index, (ai, value, variable) in enumerate(fields):
        parts.append(ai + value + (GS if variable and index < len(fields) - 1 else ""))
    return "".join(parts)


def _gs1(rng: random.Random, bad: bool, aim: str) -> SimScan:
    """A GS1 element string under ``aim``: AI 01 first, then a random subset of 17/10/21/3103/3922."""
    body = str(rng.choice((0, 0, 0, 1, 2, 3))) + _ean13_code(rng)[:-1]
    gtin = body + check_digit(body)
    fields = [("01", corrupt_last(rng, gtin) if bad else gtin, False), *_gs1_fields(rng)]
    payload = _element_string(fields)
    if bad:
        return SimScan(aim=aim, payload=payload, valid=False, kind="gs1")
    values = {ai: value for ai, value, _ in fields}
    return SimScan(
        aim=aim, payload=payload, valid=True, kind="gs1", gtin=gtin,
        price_minor=int(values["3922"]) if "3922" in values else None,
        weight_g=int(values["3103"]) if "3103" in values else None,
    )


def _gs1_128(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    return _gs1(rng, bad, "]C1")


def _gs1_datamatrix(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    return _gs1(rng, bad, "]d2")


def _rcn(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    """A scale or price label following one of the layouts (the first layout that matches is the one used)."""
    layout = rng.choice(layouts)
    pattern = layout.pattern
    for _ in range(MAX_TRIES):
        body = "".join(p if p.isdigit() else rng.choice(string.digits) for p in pattern[:-1])
        code = body + check_digit(body)
        if next(lay for lay in layouts if _matches_a_layout(code, [lay])) is layout:
            break
    else:
        raise ValueError(f"RCN layout {layout.name!r} is shadowed by an earlier layout")
    aim = {13: "]E0", 8: "]E4", 12: ""}.get(len(code), "]C0")
    kind = "rcn_price" if "P" in pattern else "rcn_weight"
    if bad:
        return SimScan(aim=aim, payload=corrupt_last(rng, code), valid=False, kind=kind)
    price = "".join(c for p, c in zip(pattern, code, strict=True) if p == "P")
    weight = "".join(c for p, c in zip(pattern, code, strict=True) if p == "W")
    return SimScan(
        aim=aim, payload=code, valid=True, kind=kind, gtin=_lookup_gtin(pattern, code),
        price_minor=int(price) if price else None,
        weight_g=_grams(weight, layout.weight_decimals) if weight else None,
    )


def _lookup_gtin(pattern: str, code: str) -> str | None:
    """The GTIN-14 a POS looks the item up by: price/weight digits zeroed, check digit recomputed."""
    if len(code) not in (8, 12, 13, 14):
        return None
    body = "".join("0" if p in "PW" else c for p, c in zip(pattern[:-1], code, strict=False))
    return (body + check_digit(body)).zfill(14)


def _grams(digits: str, decimals: int) -> int:
    """kg with ``decimals`` implied decimals, in grams rounded half up."""
    kilograms = Decimal(digits).scaleb(-decimals)
    return int((kilograms * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _other(rng: random.Random, bad: bool, layouts: Sequence[RcnLayout]) -> SimScan:
    """A non-GS1 label: a shelf location in Code 128 or a product URL in a QR code."""
    if rng.random() < 0.5:
        payload = f"LOC-{rng.choice('ABCDEFGH')}{rng.randint(1, 40):02d}-{rng.randint(1, 9):02d}"
        return SimScan(aim="]C0", payload=payload, valid=True, kind="other")
    return SimScan(aim="]Q1", payload=f"https://m.example.cn/p/{_digits(rng, 8)}", valid=True, kind="other")
