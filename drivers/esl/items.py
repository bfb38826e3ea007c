"""HQ price items (pure): the validated ``PriceItem`` of an ``esl/update`` command, currencies as shelf labels write
them, and the text each template placeholder shows for an item.

Validation messages name the field and go back to HQ, so each rule says what is wrong in words HQ can act on.
Amounts are ``Decimal`` throughout and JSON floats are read through their shortest repr, so a label shows a price
exactly as HQ wrote it.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from drivers.barcode.gs1 import GTIN_LENGTHS, check_digit_error, to_gtin14

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
PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
"""A placeholder in a template text: ``{name}``."""
