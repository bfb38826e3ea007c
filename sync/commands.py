"""Commands from HQ: bounded, validated, de-duplicated by id, routed to a handler and answered with a ``cmd_result``.

The uplink calls ``CommandRouter.handle`` for every message under ``…/cmd/#``. Checks run in this order, and the
first that fails decides the answer::

    size (before decoding) → content type → zlib inflation (bounded) → JSON → Command model
      → topic name == payload name → store == ours → already handled? → expired? → known name? → handler

Every outcome, including each rejection, queues exactly one ``cmd_result`` in the outbox (kind ``cmd_result``,
shed class keep, idem_key ``{store}:cmd:{id}``, or ``{store}:cmd:anon-{hash of the payload}`` when the payload has
no usable id). Commands rejected before they validate or because they are for another store leave no other trace.

Idempotency: at most once. A command's id is *claimed* before its handler runs: one transaction inserts its row in
``commands`` with status ``applying``; a second transaction, after the handler returns, sets the final status and
queues the result. A crash between the two leaves ``applying`` behind, and a re-delivery of that id is answered
``duplicate`` ("interrupted while applying; check state") rather than applied again. We prefer never applying a
command twice (a price change, a reload) over applying it at least once: HQ can see the interrupted answer, check
the store's state and re-issue under a new id, whereas a twice-applied command cannot be taken back. Commands that
are answered without running a handler (expired, unknown name) are recorded with their final status and their
result in one transaction. Either way an id has one definitive answer: every later delivery of it is answered
``duplicate`` with the first status and when it was first handled, even when it has since expired.
"""

import hashlib
import json
import logging
import re
import sqlite3
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pydantic_core
from pydantic import ValidationError

from edge import const
from edge.errors import CommandError, CommandRejected
from edge.store import outbox
from edge.store.writer import Writer
from sync.handlers import Handler, config_reload_handler, driver_handlers, merge_handlers, ping_handler
from sync.topics import Topics
from sync.wire import CONTENT_TYPE_JSON, CONTENT_TYPE_ZLIB, Command, CommandStatus, decode_bytes

__all__ = [
    "CommandRouter",
    "Handler",
    "config_reload_handler",
    "driver_handlers",
    "merge_handlers",
    "ping_handler",
]

logger = logging.getLogger(__name__)

APPLYING: Final = "applying"  # status of a claimed command whose handler has not finished (or never did)
LOG_EVERY_S: Final = 60.0
REASON_MAX_CHARS: Final = 300
FIELD_ERRORS_SHOWN: Final = 5
ANON_HASH_CHARS: Final = 16
_ID_MAX_CHARS: Final = 64
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]+")  # Command.id's pattern (a test keeps them equal)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What became of one command; ``kind`` names the outcome for logs and rate limiting."""

    status: CommandStatus
    kind: str
    reason: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A payload that is not a valid ``Command``, with the id recovered from it when there is one."""

    outcome: _Outcome
    command_id: str | None = None


class _Claimed:
    """Marker: the id was claimed and its handler is to run."""


_CLAIMED: Final = _Claimed()


def _rejected(kind: str, reason: str) -> _Outcome:
    return _Outcome("rejected", kind, _clip(reason))


def _clip(text: str, limit: int = REASON_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(ts: float | datetime) -> str:
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _field_errors(err: ValidationError) -> str:
    errors = err.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p)[:40] for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:FIELD_ERRORS_SHOWN]]
    more = len(errors) - FIELD_ERRORS_SHOWN
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _recover_id(raw: bytes) -> str | None:
    """The ``id`` of a JSON object that failed validation, when it is a short string, so HQ can correlate."""
    try:
        document = pydantic_core.from_json(raw)
    except ValueError:
        return None
    if isinstance(document, dict):
        value = document.get("id")
        if isinstance(value, str) and 0 < len(value) <= _ID_MAX_CHARS:
            return value
    return None


class _LogLimiter:
    """Lets one log line per kind through per period and counts the ones it held back."""

    def __init__(self, period_s: float) -> None:
        self._period_s = period_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, kind: str, now: float) -> int | None:
        """The number of lines held back since the last one, or None when this one is held back too."""
        last = self._last.get(kind)
        if last is not None and now - last < self._period_s:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._held.pop(kind, 0)


class CommandRouter:
    """Validates commands from HQ, applies each id at most once, and queues a ``cmd_result`` for every one."""

    def __init__(self, store_id: str, topics: Topics, writer: Writer, handlers: Mapping[str, Handler],
                 max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self._store_id = store_id
        self._topics = topics
        self._writer = writer
        self._handlers: Mapping[str, Handler] = dict(handlers)
        self._max_bytes = max_bytes
        self._clock = clock
        self._limiter = _LogLimiter(LOG_EVERY_S)

    def set_handlers(self, handlers: Mapping[str, Handler]) -> None:
        """Replace the handler table (e.g. after a config reload replaced the drivers)."""
        self._handlers = dict(handlers)

    def handle(self, topic: str, payload: bytes, content_type: str | None) -> CommandStatus:
        """Handle one message from ``…/cmd/{name}``; never raises. Returns the status sent back to HQ."""
        try:
            return self._handle(topic, payload, content_type)
        except Exception:
            # Only a bug (or a broken database) gets here; the uplink thread must carry on regardless.
            logger.exception("Command router failed on a message on %r", topic)
            return "failed"

    # -- the checks, in order --------------------------------------------------------------------------------

    def _handle(self, topic: str, payload: bytes, content_type: str | None) -> CommandStatus:
        now = self._clock()
        name = self._topics.command_name(topic)
        parsed = self._parse(payload, content_type)
        if isinstance(parsed, _Unreadable):
            return self._answer(parsed.command_id, name, payload, parsed.outcome, now)
        command = parsed
        if command.name != name:
            outcome = _rejected("mismatch", f"name {command.name!r} does not match the topic's command {name!r}")
            return self._answer(command.id, name, payload, outcome, now)
        if command.store != self._store_id:
            return self._answer(command.id, name, payload, _rejected("foreign", f"addressed to store {command.store}"),
                                now)
        early = self._check_applicable(command, now)
        claimed = self._record(command, early, now)
        if claimed is None:
            return "failed"  # could not record it, so it is not applied; logged in _record
        if isinstance(claimed, _Outcome):
            return claimed.status
        outcome = self._run(command)
        self._finish(command, outcome, self._clock())
        return outcome.status

    def _parse(self, payload: bytes, content_type: str | None) -> Command | _Unreadable:
        if len(payload) > self._max_bytes:
            return _Unreadable(_rejected("oversized", f"oversized: {len(payload)} bytes > {self._max_bytes} limit"))
        if content_type not in (None, "", CONTENT_TYPE_ZLIB) and not content_type.startswith(CONTENT_TYPE_JSON):
            return _Unreadable(_rejected("undecodable", f"undecodable: unsupported content type {content_type!r}"))
        try:
            raw = decode_bytes(payload, content_type, self._max_bytes)
        except ValueError:
            return _Unreadable(_rejected("oversized", f"oversized: inflates beyond {self._max_bytes} bytes"))
        except zlib.error:
            return _Unreadable(_rejected("undecodable", f"undecodable: not zlib data ({CONTENT_TYPE_ZLIB})"))
        try:
            return Command.model_validate_json(raw)
        except ValidationError as err:
            errors = err.errors(include_url=False, include_input=False)
            if errors and errors[0]["type"] == "json_invalid":
                return _Unreadable(_rejected("malformed", f"malformed: {errors[0]['msg']}"))
            if errors and errors[0]["type"] == "model_type":
                return _Unreadable(_rejected("malformed", "malformed: not a JSON object"))
            return _Unreadable(_rejected("malformed", f"invalid: {_field_errors(err)}"), _recover_id(raw))

    def _check_applicable(self, command: Command, now: float) -> _Outcome | None:
        """The answer to a valid command of ours that is not to be applied, or None when it may be."""
        if command.expires_at is not None and command.expires_at.timestamp() < now:
            return _rejected("expired", f"expired at {_iso(command.expires_at)}")
        if command.name not in self._handlers:
            known = ", ".join(sorted(self._handlers)) or "none"
            return _rejected("unknown", f"unknown command {command.name!r} (known: {known})")
        return None

    def _run(self, command: Command) -> _Outcome:
        handler = self._handlers[command.name]
        try:
            result = handler(command)
            json.dumps(result, allow_nan=False)  # the result travels as JSON; find out now rather than later
        except CommandRejected as err:
            return _rejected("handler", str(err) or "rejected by its handler")
        except CommandError as err:
            return _Outcome("failed", "failed", _clip(str(err) or "failed in its handler"))
        except Exception as err:
            self._log_internal(command, err)
            return _Outcome("failed", "internal", _clip(f"internal error: {type(err).__name__}: {err}"))
        if not isinstance(result, dict):
            return _Outcome("failed", "internal", f"internal error: handler returned {type(result).__name__}")
        return _Outcome("ok", "ok", result=result)

    # -- recording and answering -----------------------------------------------------------------------------

    def _record(self, command: Command, final: _Outcome | None, now: float) -> _Outcome | _Claimed | None:
        """Claim the id (status applying) or record its final outcome; a known id is answered duplicate instead.

        Returns the outcome answered, ``_CLAIMED`` when the handler is to run, or None when the database failed.
        """

        def task(conn: sqlite3.Connection) -> _Outcome | _Claimed:
            row = conn.execute(f"SELECT received_at, status, reason FROM {const.TABLE_COMMANDS} WHERE id = ?",
                               (command.id,)).fetchone()
            if row is not None:
                duplicate = self._duplicate(*row)
                self._enqueue(conn, command.id, command.name, duplicate, now, command.id)
                return duplicate
            conn.execute(
                f"INSERT INTO {const.TABLE_COMMANDS} (id, name, received_at, status, reason) VALUES (?, ?, ?, ?, ?)",
                (command.id, command.name, now, final.status if final else APPLYING, final.reason if final else None),
            )
            if final is None:
                return _CLAIMED
            self._enqueue(conn, command.id, command.name, final, now, command.id)
            return final

        try:
            answered = self._writer.call(task)
        except Exception as err:
            logger.error("Cannot record command %r (id %r), so it is not applied: %s", command.name, command.id, err)
            return None
        if isinstance(answered, _Outcome):
            self._log(answered, command.id, command.name, now)
        return answered

    def _finish(self, command: Command, outcome: _Outcome, now: float) -> None:
        """Record the handler's outcome and queue its result, in one transaction."""

        def task(conn: sqlite3.Connection) -> None:
            conn.execute(f"UPDATE {const.TABLE_COMMANDS} SET status = ?, reason = ? WHERE id = ?",
                         (outcome.status, outcome.reason, command.id))
            self._enqueue(conn, command.id, command.name, outcome, now, command.id)

        try:
            self._writer.call(task)
        except Exception as err:
            # The command was applied but its row says applying: a re-delivery is answered duplicate, never re-run.
            logger.error("Command %r (id %r) was %s but its result could not be recorded: %s", command.name,
                         command.id, outcome.status, err)
            return
        self._log(outcome, command.id, command.name, now)

    def _answer(self, command_id: str | None, name: str | None, payload: bytes, outcome: _Outcome,
                now: float) -> CommandStatus:
        """Queue the result of a command that is not recorded (unreadable, mismatched or another store's)."""
        key_id = command_id if command_id is not None and _ID_PATTERN.fullmatch(command_id) else None
        if key_id is None:
            key_id = "anon-" + hashlib.sha256(payload).hexdigest()[:ANON_HASH_CHARS]
        try:
            self._writer.call(lambda conn: self._enqueue(conn, command_id, name, outcome, now, key_id))
        except Exception as err:
            logger.error("Cannot queue the result of command %r (id %r): %s", name, command_id, err)
        self._log(outcome, command_id, name, now)
        return outcome.status

    def _duplicate(self, received_at: float, status: str, reason: str | None) -> _Outcome:
        first = _iso(received_at)
        result: dict[str, Any] = {"first_handled_at": first, "first_status": status}
        if status == APPLYING:
            text = f"interrupted while applying (received {first}); check state, re-issue under a new id if needed"
        else:
            result["first_reason"] = reason
            text = f"already handled at {first}: {status}" + (f" ({reason})" if reason else "")
        return _Outcome("duplicate", "duplicate", _clip(text), result)

    def _enqueue(self, conn: sqlite3.Connection, command_id: str | None, name: str | None, outcome: _Outcome,
                 now: float, key_id: str) -> None:
        body = {"id": command_id, "name": name, "status": outcome.status, "reason": outcome.reason,
                "result": outcome.result, "ts": _iso(now)}
        outbox.enqueue(conn, kind=const.CMD_RESULT, shed_class=const.SHED_KEEP,
                       idem_key=f"{self._store_id}:cmd:{key_id}",
                       body=json.dumps(body, separators=(",", ":"), allow_nan=False), now=now)

    # -- logging: ids and names only, never payload contents ---------------------------------------------------

    def _log(self, outcome: _Outcome, command_id: str | None, name: str | None, now: float) -> None:
        if outcome.status == "ok":
            logger.info("Command %r (id %r) applied", name, command_id)
            return
        if outcome.kind == "internal":
            return  # already logged with its traceback by _log_internal
        held = self._limiter.allow(outcome.kind, now)
        if held is None:
            return
        level = logging.INFO if outcome.status == "duplicate" else logging.WARNING
        suffix = f" ({held} more like it in the last minute not logged)" if held else ""
        logger.log(level, "Command %r (id %r) %s: %s%s", name, command_id, outcome.status,
                   _LOG_TEXT.get(outcome.kind, outcome.kind), suffix)

    def _log_internal(self, command: Command, err: Exception) -> None:
        held = self._limiter.allow("internal", self._clock())
        if held is not None:
            logger.error("Command %r (id %r) handler raised %s%s", command.name, command.id, type(err).__name__,
                         f" ({held} more internal errors not logged)" if held else "", exc_info=err)

# What the log says per outcome kind: fixed text, so no payload content (fields, values, store ids) reaches logs.
_LOG_TEXT: Final = {
    "oversized": "payload over the size limit",
    "undecodable": "payload could not be decoded",
    "malformed": "not a valid command",
    "mismatch": "payload name differs from the topic",
    "foreign": "addressed to another store",
    "expired": "expired before it arrived",
    "unknown": "no handler for this command",
    "duplicate": "id already handled (not applied again)",
    "handler": "rejected by its handler",
    "failed": "failed in its handler",
    "internal": "internal error in its handler",
}

