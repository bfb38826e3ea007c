"""The open label updates of one AP, with no I/O: each label's one open update, when queued ones are due, and how
upload answers, tag records, transfer failures, AP reboots and deadlines move an update through
queued → sent → pending → confirmed | failed.

The driver owns every socket and the store; it calls in with ``now`` and what it heard, and persists what
``take_changes`` hands back. Keeping the rules here, apart from the I/O, lets them be read (and tested) in one place.
"""

import heapq
from collections.abc import Callable, Mapping
from typing import TypeAlias

from drivers.esl.protocol import LabelUpdate, TagRecord, judge

Count: TypeAlias = Callable[[str, int], None]
Changes: TypeAlias = list[tuple[LabelUpdate, float | None]]
"""Updates whose state changed, each with its ``finished_at`` (``None`` while it is open)."""


class UpdateBook:
    """Open updates by label, a due heap of the queued ones, and the state changes not yet persisted."""

    def __init__(self, *, upload_attempts: int, transfer_attempts: int, confirm_deadline_s: float,
                 ap_keeps_content: bool, count: Count, wake: Callable[[], None]) -> None:
        """``ap_keeps_content``: the AP keeps uploads on flash and redraws them after a reboot (json templates; an
        image lives in its RAM queue and is lost). ``wake`` tells the uploader a queued update may be due."""
        self.upload_attempts = upload_attempts
        self.transfer_attempts = transfer_attempts
        self.confirm_deadline_s = confirm_deadline_s
        self.ap_keeps_content = ap_keeps_content
        self._count = count
        self._wake = wake
        self.open: dict[str, LabelUpdate] = {}  # label → its one open update
        self.shown: dict[str, str] = {}  # label → content hash of its last confirmed update
        self._due: list[tuple[float, int, str]] = []  # heap of (due_at, update id, label) for queued updates
        self._changed: dict[int, tuple[LabelUpdate, float | None]] = {}
        self._redrawn: set[int] = set()  # re-queued at a reboot while the AP may still deliver their upload

    def take_changes(self) -> Changes:
        """The state changes since the last call, for the store."""
        changed, self._changed = list(self._changed.values()), {}
        return changed

    # -- queue -------------------------------------------------------------------------------------------------

    def enqueue(self, updates: list[LabelUpdate], now: float) -> None:
        """New (or resumed) updates; each replaces its label's older open update."""
        for update in updates:
            older = self.open.get(update.label)
            if older is not None and older.id < update.id:
                del self.open[older.label]  # the store marked it superseded when this one was created
            self.open[update.label] = update
            if update.state == "queued":
                self.schedule(update, now)
        self._wake()

    def schedule(self, update: LabelUpdate, at: float) -> None:
        """Upload a queued update at ``at`` (never before it is due)."""
        heapq.heappush(self._due, (max(at, update.due_at), update.id, update.label))
        self._wake()

    def next_due(self, now: float) -> tuple[LabelUpdate | None, float | None]:
        """The next queued update that is due, or (None, when the next one will be)."""
        while self._due:
            due_at, update_id, label = self._due[0]
            update = self.open.get(label)
            if update is None or update.id != update_id or update.state != "queued":
                heapq.heappop(self._due)  # superseded, finished or already re-queued
                continue
            if due_at > now:
                return None, due_at
            heapq.heappop(self._due)
            return update, None
        return None, None

    # -- upload answers ----------------------------------------------------------------------------------------

    def already_shown(self, update: LabelUpdate, digest: str, now: float) -> None:
        """The label shows this content already and nothing is queued for it: done without an upload."""
        update.content_hash, update.state, update.reason = digest, "confirmed", "already shown"
        self._finish(update, now)

    def busy(self, update: LabelUpdate, error: str, retry_at: float, now: float) -> bool:
        """A 409 or a timeout: charged to the update; True when it is tried again at ``retry_at``."""
        update.attempts += 1
        if update.attempts >= self.upload_attempts:
            self.fail(update, f"upload failed {update.attempts} time(s): {error}", now)
            return False
        self._changed[update.id] = (update, None)
        self.schedule(update, retry_at)
        return True

    def rejected(self, update: LabelUpdate, error: str, now: float) -> None:
        """The AP refused the upload itself: trying again cannot help."""
        update.attempts += 1
        self.fail(update, f"AP rejected the upload: {error}", now)

    def sent(self, update: LabelUpdate, digest: str, before: int, record: TagRecord, now: float, *,
             transfer_failed: bool) -> None:
        """The AP accepted the upload; ``before`` is the label's update count when it started. ``transfer_failed``:
        the label's transfer failed while the answer was on its way."""
        update.attempts += 1
        update.state, update.sent_at, update.content_hash = "sent", now, digest
        update.updatecount_before = before
        self._redrawn.discard(update.id)
        self._changed[update.id] = (update, None)
        if transfer_failed:
            self.transfer_failed(update, record, now)
        else:
            self._apply(update, record, now)

    # -- what the AP and the labels say ------------------------------------------------------------------------

    def observe(self, record: TagRecord, now: float) -> None:
        """A fresh record of a label: its open update may now be pending, confirmed or have failed a transfer."""
        update = self.open.get(record.mac)
        if update is None:
            return
        if update.id in self._redrawn and update.state == "queued":
            # The AP redrew the upload it had before the reboot and the label took it: no need to send it again
            # (the AP would skip a copy of what the label shows, and the update would wait for its deadline).
            before = update.updatecount_before
            if record.updatecount is not None and before is not None and record.updatecount > before:
                self._confirm(update, now)
            return
        self._apply(update, record, now)

    def transfer_timed_out(self, label: str, record: TagRecord | None, now: float) -> None:
        """The AP reported a transfer time-out for ``label``."""
        update = self.open.get(label)
        if update is not None and update.state in ("sent", "pending"):
            self.transfer_failed(update, record, now)

    def transfer_failed(self, update: LabelUpdate, record: TagRecord | None, now: float) -> None:
        """The label's transfer failed: send the update again, or fail it after ``transfer_attempts``."""
        update.transfers += 1
        self._count("transfers_failed", 1)
        if update.transfers < self.transfer_attempts:
            update.state = "queued"
            self.schedule(update, now)
            self._changed[update.id] = (update, None)
            return
        detail = f" (RSSI {record.rssi} dBm, battery {record.battery_mv} mV)" if record is not None else ""
        self.fail(update, f"transfer timed out {update.transfers} time(s){detail}", now)

    def rebooted(self, now: float) -> int:
        """The AP is rebooting and loses its RAM queues: every update it accepted goes back to the queue, to be
        uploaded again once the AP is back. Not a failed transfer, so nothing is charged; returns how many."""
        accepted = [update for update in self.open.values() if update.state in ("sent", "pending")]
        for update in accepted:
            self.requeue(update, now)
        if accepted:
            self._count("updates_requeued_at_reboot", len(accepted))
        return len(accepted)

    def requeue(self, update: LabelUpdate, now: float) -> None:
        """Upload an accepted update again, uncharged: the AP lost it in a reboot."""
        update.state = "queued"
        if self.ap_keeps_content:
            self._redrawn.add(update.id)
        self.schedule(update, now)
        self._changed[update.id] = (update, None)

    def expire(self, now: float, labels: Mapping[str, TagRecord]) -> None:
        """Fail the updates not confirmed ``confirm_deadline_s`` after they became due."""
        deadline = self.confirm_deadline_s
        for update in list(self.open.values()):
            if now > update.due_at + deadline:
                label = labels.get(update.label)
                seen = f"; label last seen {now - label.lastseen:.0f} s ago" if label and label.lastseen else ""
                self.fail(update, f"not confirmed within {deadline:.0f} s (was {update.state}{seen})", now)

    def fail(self, update: LabelUpdate, reason: str, now: float) -> None:
        """Close an update as failed, with the reason HQ and the technician see."""
        update.state, update.reason = "failed", reason
        self._finish(update, now)

    # -- internals ---------------------------------------------------------------------------------------------

    def _apply(self, update: LabelUpdate, record: TagRecord, now: float) -> None:
        verdict = judge(update, record)
        if verdict == "confirmed":
            self._confirm(update, now)
        elif verdict == "pending":
            update.state = "pending"
            self._changed[update.id] = (update, None)
        elif verdict == "transfer_failed":
            self.transfer_failed(update, record, now)

    def _confirm(self, update: LabelUpdate, now: float) -> None:
        update.state, update.reason = "confirmed", None
        if update.content_hash is not None:
            self.shown[update.label] = update.content_hash
        self._finish(update, now)

    def _finish(self, update: LabelUpdate, now: float) -> None:
        self._count(f"updates_{update.state}", 1)
        self._changed[update.id] = (update, now)
        self._redrawn.discard(update.id)
        if self.open.get(update.label) is update:
            del self.open[update.label]
