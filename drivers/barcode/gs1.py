"""Pure GS1 helpers: GTIN check digits, GTIN-14 normalisation and GS1 element-string decoding (via biip)."""

import json
from dataclasses import dataclass
from typing import Final, Literal

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_messages import GS1Message

ScanKind = Literal["gtin", "gs1", "rcn_price", "rcn_weight", "other"]

GTIN_LENGTHS: Final = (8, 12, 13, 14)
GTIN_AIS: Final = ("01", "02")
WEIGHT_KG_AI_PREFIX: Final = "310"
PRICE_PAYABLE_AI_PREFIX: Final = "392"
# Minor units per major unit of the store currency: fen/cent. 392n prices are converted assuming a 2-decimal
# currency, which holds for CNY, EUR, USD, PLN and GBP; a 0- or 3-decimal currency would need a config field.
CURRENCY_DECIMALS: Final = 2
GRAM_DECIMALS: Final = 3


@dataclass(slots=True, frozen=True)
class Verdict:
    """What a payload decodes to, before the device name and time are attached."""

    kind: ScanKind
    valid: bool
    gtin: str | None = None
    error: str | None = None
    price_minor: int | None = None
    weight_g: int | None = None
    ai_json: str | None = None


def gtin_check_digit(payload: str) -> int:
    """The GS1 mod-10 check digit of a digit string (weights 3,1,3,… from the right)."""
    return gs1_standard_check_digit(payload)


def check_digit_error(code: str) -> str | None:
    """Why the last digit of ``code`` is not the GS1 check digit of the others, or ``None`` when it is."""
    expected = gtin_check_digit(code[:-1])
    got = int(code[-1])
    if expected == got:
        return None
    return f"bad check digit: expected {expected}, got {got}"


def to_gtin14(code: str) -> str:
    """A GTIN-8/12/13/14 left-padded with zeros to the 14 digits used as the lookup key."""
    return code.zfill(14)


def scale_decimal(digits: str, decimals: int, target_decimals: int) -> int:
    """An integer digit string with ``decimals`` implied decimals, as an integer with ``target_decimals``.

    Rounds half up, e.g. kg with 5 decimals to grams.
    """
    # Annotated because mypy types int ** int as Any (a negative exponent would give a float).
    numerator: int = int(digits) * 10**target_decimals
    denominator: int = 10**decimals
    return (2 * numerator + denominator) // (2 * denominator)


def decode_gtin(code: str) -> Verdict:
    """Check a GTIN-8/12/13/14 digit string and normalise it to GTIN-14."""
    error = check_digit_error(code)
    if error is not None:
        return Verdict(kind="gtin", valid=False, error=error)
    return Verdict(kind="gtin", valid=True, gtin=to_gtin14(code))


def decode_element_strings(payload: str) -> Verdict:
    """Decode a GS1 element string (FNC1 as ``\\x1d``) into AIs, GTIN, net weight and price."""
    try:
        message = GS1Message.parse(payload)
    except (ParseError, ValueError) as err:
        return Verdict(kind="gs1", valid=False, error=f"bad GS1 data: {err}")
    ais, error = _collect_ais([(es.ai.ai, es.value) for es in message.element_strings])
    if error is None:
        error = _check_digit_errors(message)
    if error is not None:
        return Verdict(kind="gs1", valid=False, error=error, ai_json=_ai_json(ais) if ais else None)
    return Verdict(
        kind="gs1",
        valid=True,
        gtin=next((ais[ai] for ai in GTIN_AIS if ai in ais), None),
        price_minor=_scaled_ai(ais, PRICE_PAYABLE_AI_PREFIX, CURRENCY_DECIMALS),
        weight_g=_scaled_ai(ais, WEIGHT_KG_AI_PREFIX, GRAM_DECIMALS),
        ai_json=_ai_json(ais),
    )


def _collect_ais(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], str | None]:
    """AI → value, or an error when the message is empty or repeats an AI with a different value."""
    if not pairs:
        return {}, "empty GS1 message"
    ais: dict[str, str] = {}
    for ai, value in pairs:
        # GS1 allows an AI to repeat only with the same value; different values make the message ambiguous.
        if ais.get(ai, value) != value:
            return ais, f"AI ({ai}) repeated with different values"
        ais[ai] = value
    return ais, None


def _check_digit_errors(message: GS1Message) -> str | None:
    """The first check-digit problem among GTIN, SSCC and GLN element strings, or ``None``."""
    # GTINs get our own check rather than biip's ``gtin_error``, which also rejects values it cannot classify.
    for es in message.element_strings:
        ai = es.ai.ai
        error = check_digit_error(es.value) if ai in GTIN_AIS else es.sscc_error or es.gln_error
        if error is not None:
            return f"bad check digit in AI ({ai}): {error.removeprefix('bad check digit: ')}"
    return None


def _scaled_ai(ais: dict[str, str], prefix: str, target_decimals: int) -> int | None:
    """The first ``prefix`` + n AI value (n implied decimals) scaled to ``target_decimals``."""
    for ai, value in ais.items():
        if len(ai) == 4 and ai.startswith(prefix) and ai[3].isdigit():
            return scale_decimal(value, int(ai[3]), target_decimals)
    return None


def _ai_json(ais: dict[str, str]) -> str:
    """AIs as a compact JSON object, in scan order."""
    return json.dumps(ais, separators=(",", ":"))
