"""The day's price changes as data: ``esl_updates.jsonl``, one update batch a line.

Each line: ``{"ts", "local", "reason", "items": [{"gtin", "price", "promo_price"?, "currency"}]}`` with prices in
major units (yuan, two decimals). ``promotion`` (10:00) puts the promotion display's items on offer; ``markdown``
(17:00) halves the price of a few fresh goods. Nothing here talks to an access point.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from pathlib import Path

from simulators.store.catalog import EslUpdate


def write_esl(updates: list[EslUpdate], path: Path, tz: tzinfo) -> int:
    """Write the updates in time order; returns the number of lines."""
    lines = []
    for update in sorted(updates, key=lambda u: u.ts):
        items = []
        for change in update.items:
            item: dict[str, object] = {"gtin": change.gtin, "price": change.price, "currency": change.currency}
            if change.promo_price is not None:
                item["promo_price"] = change.promo_price
            items.append(item)
        local = datetime.fromtimestamp(update.ts, tz).strftime("%H:%M")
        lines.append(json.dumps({"ts": update.ts, "local": local, "reason": update.reason, "items": items}))
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
