"""What the gateway knows of one AP's labels, with no I/O: the latest record of each, which ones the AP stopped
listing, when each was last heard live, the label and history rows not yet written, and the AP's health counts.
"""

from drivers.esl.config import EslConfig
from drivers.esl.protocol import TagRecord, is_low_battery, is_timed_out, worth_history


class LabelTable:
    """The AP's labels as last heard, by MAC."""

    def __init__(self, cfg: EslConfig) -> None:
        self.cfg = cfg
        self.records: dict[str, TagRecord] = {}
        self.missing: set[str] = set()
        self.maxsleep_min = cfg.maxsleep_min  # the AP's own value once /get_ap_config answered
        self.heard_at: dict[str, float] = {}  # label → monotonic time the websocket or an upload last told us of it
        self._history_at: dict[str, float] = {}
        self._dirty: dict[str, TagRecord] = {}
        self._history: list[TagRecord] = []

    def load(self, records: list[TagRecord], missing: set[str]) -> None:
        """The labels as the store had them at start."""
        self.records = {record.mac: record for record in records}
        self.missing = missing

    def update(self, record: TagRecord, now: float) -> None:
        """A fresh record: kept, written at the next flush, and added to the history when it is worth a row."""
        previous = self.records.get(record.mac)
        self.records[record.mac] = record
        self.missing.discard(record.mac)
        self._dirty[record.mac] = record
        if worth_history(previous, record) or now - self._history_at.get(record.mac, 0.0) >= self.cfg.history_every_s:
            self._history.append(record)
            self._history_at[record.mac] = now

    def listed(self, present: set[str]) -> None:
        """A complete /get_db listed exactly ``present``: the other labels are missing (kept, not deleted)."""
        self.missing = set(self.records) - present

    def take_changes(self) -> tuple[list[TagRecord], list[TagRecord]]:
        """Changed labels and new history rows since the last call, for the store."""
        labels, history = list(self._dirty.values()), self._history
        self._dirty, self._history = {}, []
        return labels, history

    def health_counts(self, now: float) -> dict[str, int]:
        """Labels, low batteries, timed-out labels (the AP's rules) and labels the AP stopped listing."""
        records = self.records.values()
        low = sum(is_low_battery(r.battery_mv, self.cfg.low_battery_mv) for r in records)
        timed_out = sum(is_timed_out(r, now, self.maxsleep_min, self.cfg.checkin_grace_s) for r in records)
        return {"labels": len(self.records) - len(self.missing), "low_battery": low, "timed_out": timed_out,
                "missing": len(self.missing)}
