"""The ``esl/update`` command's arguments (from HQ, or from ``edge esl push``): validated into price items.

``{"items": [{"gtin": "...", "price": "1.99", "currency": "EUR", ...}, ...]}``; see ``PriceItem`` for the fields.
A problem is answered with ``CommandRejected`` naming the item and field, and nothing of the command is applied.
"""

from collections import Counter
from typing import Any, Final

from pydantic import ValidationError

from drivers.esl.items import PriceItem
from edge.errors import CommandRejected

UPDATE_COMMAND: Final = "esl/update"
MAX_ITEMS: Final = 20_000


def parse_update_args(args: dict[str, Any]) -> list[PriceItem]:
    """Validate ``{"items": [...]}``: every item valid, each GTIN once, nothing else in the arguments."""
    unknown = sorted(set(args) - {"items"})
    if unknown:
        raise CommandRejected(f"{UPDATE_COMMAND} takes only 'items' (got: {', '.join(unknown)})")
    raw = args.get("items")
    if not isinstance(raw, list) or not raw:
        raise CommandRejected(f"{UPDATE_COMMAND} needs 'items': a non-empty list of price items")
    if len(raw) > MAX_ITEMS:
        raise CommandRejected(f"{UPDATE_COMMAND} takes at most {MAX_ITEMS} items (got {len(raw)})")
    items, problems = [], []
    for index, entry in enumerate(raw):
        try:
            items.append(PriceItem.model_validate(entry))
        except ValidationError as err:
            for error in err.errors()[:3]:
                where = ".".join(str(part) for part in error["loc"])
                problems.append(f"items[{index}]{'.' + where if where else ''}: {error['msg']}")
        if len(problems) >= 10:
            break
    if problems:
        raise CommandRejected("; ".join(problems))
    repeated = sorted(gtin for gtin, count in Counter(item.gtin for item in items).items() if count > 1)
    if repeated:
        raise CommandRejected(f"GTIN(s) listed more than once: {', '.join(repeated[:10])}")
    return items
