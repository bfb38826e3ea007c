"""The store's products (real GTINs from the barcode simulator, with prices) and the day's ESL price changes."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, time

from simulators.barcode.codes import random_scan

CATALOG_SIZE = 400
PROMOTION_ITEMS = 12  # on the promotion display today
MARKDOWN_ITEMS = 8  # fresh goods marked down in the evening
PROMO_AT = time(10, 0)
MARKDOWN_AT = time(17, 0)
CURRENCY = "CNY"


@dataclass(frozen=True, slots=True)
class Product:
    """One product: what a scanner types for it, its GTIN-14 and shelf price in minor units (fen)."""

    gtin: str
    aim: str
    payload: str
    price_minor: int
    promotion: bool  # shown in the promotion area, on offer from PROMO_AT


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One item's new label content: price (and a promotion price while on offer), in major units."""

    gtin: str
    price: float
    promo_price: float | None
    currency: str


@dataclass(frozen=True, slots=True)
class EslUpdate:
    """A batch of price changes HQ sends at one moment of the day."""

    ts: float
    reason: str
    items: tuple[PriceChange, ...]


def catalog(seed: int, size: int = CATALOG_SIZE) -> list[Product]:
    """``size`` distinct retail products (EAN-13, EAN-8, UPC-A as till scanners send them), the first on promotion."""
    rng = random.Random(f"{seed}:catalog")
    seen: set[str] = set()
    products: list[Product] = []
    while len(products) < size:
        scan = random_scan(rng, bad_share=0.0, rcn_layouts=())
        if scan.kind != "gtin" or scan.gtin is None or scan.aim == "]I1" or scan.gtin in seen:
            continue  # till items only: no case codes (ITF-14), GS1 element strings or shelf labels
        seen.add(scan.gtin)
        price = max(90, round(rng.lognormvariate(math.log(1500), 0.8) / 10) * 10 - 1)
        products.append(Product(scan.gtin, scan.aim, scan.payload, price, len(products) < PROMOTION_ITEMS))
    return products


def esl_updates(products: list[Product], day: datetime, seed: int) -> list[EslUpdate]:
    """The day's price changes: promotion prices at 10:00, evening markdowns of fresh goods at 17:00."""
    rng = random.Random(f"{seed}:esl")
    tz = day.tzinfo
    promo = tuple(PriceChange(p.gtin, p.price_minor / 100, round(p.price_minor * rng.choice((0.7, 0.8, 0.85))) / 100,
                              CURRENCY) for p in products if p.promotion)
    fresh = rng.sample([p for p in products if not p.promotion], MARKDOWN_ITEMS)
    markdown = tuple(PriceChange(p.gtin, round(p.price_minor * 0.5) / 100, None, CURRENCY) for p in fresh)
    return [
        EslUpdate(datetime.combine(day.date(), PROMO_AT, tz).timestamp(), "promotion", promo),
        EslUpdate(datetime.combine(day.date(), MARKDOWN_AT, tz).timestamp(), "markdown", markdown),
    ]
