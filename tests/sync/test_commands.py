"""Commands from HQ: every rejection path answered once, ids applied at most once, routing to handlers and drivers."""

import json
import logging
import sqlite3
import zlib
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.driver import Commandable
from edge.errors import CommandError, CommandRejected, ConfigError
from edge.store import outbox
from edge.store.db import connect_readonly
from edge.store.writer import Writer
from sync.commands import (
    _ID_PATTERN,
    CommandRouter,
    Handler,
    config_reload_handler,
    driver_handlers,
    merge_handlers,
    ping_handler,
)
from sync.topics import Topics
from sync.wire import CONTENT_TYPE_JSON, CONTENT_TYPE_ZLIB, Command, CommandResult

MakeWriter = Callable[..., Writer]
STORE = "s1"
TOPICS = Topics("retail/v1/{store_id}", STORE)
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
MAX_BYTES = 65_536


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeEsl:
    """A Commandable driver: takes ``esl/update`` and remembers what it applied."""

    applied: list[dict[str, Any]] = field(default_factory=list)

    def command_names(self) -> frozenset[str]:
        return frozenset({"esl/update"})

    def handle_command(self, name: str, args: dict[str, Any], command_id: str) -> dict[str, Any]:
        if "label" not in args:
            raise CommandRejected("esl/update needs 'label'")
        self.applied.append(args)
        return {"label": args["label"], "updated": True}


class Counting:
    """A handler that counts its calls and then does what it was told."""

    def __init__(self, action: Callable[[Command], dict[str, Any]] = lambda c: {"done": c.id}) -> None:
        self.calls: list[str] = []
        self._action = action

    def __call__(self, command: Command) -> dict[str, Any]:
        self.calls.append(command.id)
        return self._action(command)


@dataclass
class Harness:
    router: CommandRouter
    path: Path
    clock: Clock
    handler: Counting
    esl: FakeEsl

    def send(self, name: str, payload: bytes | dict[str, Any], content_type: str | None = CONTENT_TYPE_JSON) -> str:
        raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        return self.router.handle(TOPICS.cmd(name), raw, content_type)

    def results(self) -> list[tuple[outbox.OutboxRow, CommandResult]]:
        """Every queued cmd_result, completed with the envelope the publisher adds, then validated."""
        with closing(connect_readonly(self.path)) as conn:
            conn.row_factory = None
            rows = outbox.pending(conn, 0, 10_000)
        assert {row.kind for row in rows} <= {"cmd_result"}
        return [(row, CommandResult.model_validate({
            **json.loads(row.body), "v": 1, "store": STORE, "seq": row.id, "idem_key": row.idem_key,
            "sent_at": "2023-11-14T22:14:00Z"})) for row in rows]

    def recorded(self) -> dict[str, tuple[str, str | None]]:
        with closing(connect_readonly(self.path)) as conn:
            return {r["id"]: (r["status"], r["reason"]) for r in conn.execute("SELECT * FROM commands")}


def command(name: str = "test/do", cid: str = "cmd-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "id": cid, "name": name, "store": STORE, "issued_at": "2023-11-14T22:13:00Z",
                            "expires_at": None, "args": {}}
    body.update(overrides)
    return body


def make_router(writer: Any, clock: Clock, handler: Counting, esl: FakeEsl) -> CommandRouter:
    handlers = merge_handlers({"test/do": handler, "ping": ping_handler("1.2.3", T0 - 10, clock)},
                              driver_handlers([esl, object()]))
    return CommandRouter(STORE, TOPICS, writer, handlers, MAX_BYTES, clock=clock)


@pytest.fixture
def harness(fresh_db: Path, make_writer: MakeWriter) -> Harness:
    clock, handler, esl = Clock(), Counting(), FakeEsl()
    return Harness(make_router(make_writer(fresh_db), clock, handler, esl), fresh_db, clock, handler, esl)


# -- rejections: one cmd_result each, nothing applied -------------------------------------------------------------

BOMB = zlib.compress(b'{"id": "bomb-1", "pad": "' + b" " * (4 * 2**20) + b'"}', 9)

REJECTIONS: dict[str, tuple[str, bytes | dict[str, Any], str | None, str, str | None]] = {
    # case: (topic command name, payload, content type, expected reason fragment, expected id in the result)
    "malformed-json": ("test/do", b'{"id": "cmd-1", "name": ', CONTENT_TYPE_JSON, "malformed: Invalid JSON", None),
    "not-json-bytes": ("test/do", b"\x00\xff\xfe binary \x81", None, "malformed: Invalid JSON", None),
    "json-array": ("test/do", b"[1, 2]", CONTENT_TYPE_JSON, "malformed: not a JSON object", None),
    "wrong-types": ("test/do", command(cid="cmd-7", issued_at="yesterday", args=[1], v=2), CONTENT_TYPE_JSON,
                    "invalid: v: Input should be 1; issued_at: ", "cmd-7"),
    "missing-id": ("test/do", {k: v for k, v in command().items() if k != "id"}, CONTENT_TYPE_JSON,
                   "invalid: id: Field required", None),
    "bad-id": ("test/do", command(cid="no spaces allowed"), CONTENT_TYPE_JSON, "id: String should match pattern",
               "no spaces allowed"),
    "unknown-field": ("test/do", command(priority="high"), CONTENT_TYPE_JSON,
                      "priority: Extra inputs are not permitted", "cmd-1"),
    "oversized": ("test/do", b"{" + b" " * MAX_BYTES + b"}", CONTENT_TYPE_JSON,
                  f"oversized: {MAX_BYTES + 2} bytes > {MAX_BYTES} limit", None),
    "zlib-bomb": ("test/do", BOMB, CONTENT_TYPE_ZLIB, f"oversized: inflates beyond {MAX_BYTES} bytes", None),
    "not-zlib": ("test/do", json.dumps(command()).encode(), CONTENT_TYPE_ZLIB, "undecodable: not zlib data", None),
    "content-type": ("test/do", json.dumps(command()).encode(), "text/plain",
                     "undecodable: unsupported content type 'text/plain'", None),
    "foreign-store": ("test/do", command(store="s2"), CONTENT_TYPE_JSON, "addressed to store s2", "cmd-1"),
    "topic-name-mismatch": ("ping", command(name="test/do"), CONTENT_TYPE_JSON,
                            "name 'test/do' does not match the topic's command 'ping'", "cmd-1"),
    "expired": ("test/do", command(expires_at="2023-11-14T22:13:19Z"), CONTENT_TYPE_JSON,
                "expired at 2023-11-14T22:13:19.000Z", "cmd-1"),
    "unknown-name": ("reboot", command(name="reboot"), CONTENT_TYPE_JSON,
                     "unknown command 'reboot' (known: esl/update, ping, test/do)", "cmd-1"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_router__each_rejection_queues_one_valid_result_and_applies_nothing(harness: Harness, case: str) -> None:
    name, payload, content_type, reason, result_id = REJECTIONS[case]
    assert len(BOMB) < MAX_BYTES  # the bomb passes the size check and must be caught while inflating

    assert harness.send(name, payload, content_type) == "rejected"

    [(row, result)] = harness.results()
    assert result.status == "rejected"
    assert result.reason is not None and reason in result.reason
    assert result.id == result_id
    assert result.name == name
    assert row.idem_key.startswith(f"{STORE}:cmd:")
    assert harness.handler.calls == [] and harness.esl.applied == []
    if case in ("expired", "unknown-name"):
        # A valid command of ours gets one definitive answer: it is recorded, so a re-delivery is a duplicate.
        assert harness.recorded() == {"cmd-1": ("rejected", result.reason)}
    else:
        assert harness.recorded() == {}


def test_router__result_idem_key_uses_a_valid_id_else_a_payload_hash(harness: Harness) -> None:
    harness.send("test/do", command(cid="no spaces allowed"))
    harness.send("test/do", b"garbage")
    harness.send("test/do", b"garbage")
    harness.send("test/do", command(store="s2", cid="abc"))
    keys = [row.idem_key for row, _ in harness.results()]
    assert keys[0].startswith("s1:cmd:anon-") and len(keys[0]) == len("s1:cmd:anon-") + 16
    assert keys[1] == keys[2] != keys[0]  # the same bytes, the same key
    assert keys[3] == "s1:cmd:abc"
    # The router's own test of a usable id is the model's pattern.
    assert Command.model_json_schema()["properties"]["id"]["pattern"] == f"^{_ID_PATTERN.pattern}$"


def test_router__message_on_a_topic_that_is_not_a_command_is_rejected(harness: Harness) -> None:
    assert harness.router.handle(TOPICS.state, json.dumps(command()).encode(), None) == "rejected"
    [(_, result)] = harness.results()
    assert result.name is None and result.reason is not None and "does not match" in result.reason


# -- applying: ok, compressed, idempotency ------------------------------------------------------------------------


def test_router__valid_command_is_applied_and_recorded_with_its_result(harness: Harness) -> None:
    assert harness.send("test/do", command(args={"x": 1})) == "ok"
    [(row, result)] = harness.results()
    assert (result.status, result.id, result.name, result.result) == ("ok", "cmd-1", "test/do", {"done": "cmd-1"})
    assert result.reason is None
    assert row.idem_key == "s1:cmd:cmd-1"
    assert result.ts.timestamp() == T0
    assert harness.handler.calls == ["cmd-1"]
    assert harness.recorded() == {"cmd-1": ("ok", None)}


def test_router__compressed_command_is_inflated_and_applied(harness: Harness) -> None:
    payload = zlib.compress(json.dumps(command(cid="z-1")).encode())
    assert harness.send("test/do", payload, CONTENT_TYPE_ZLIB) == "ok"
    assert harness.handler.calls == ["z-1"]


def test_router__redelivered_id_is_applied_once_and_answered_duplicate(harness: Harness) -> None:
    assert harness.send("test/do", command()) == "ok"
    harness.clock.now += 30
    assert harness.send("test/do", command()) == "duplicate"
    assert harness.handler.calls == ["cmd-1"]
    (first_row, first), (dup_row, dup) = harness.results()
    assert first.status == "ok"
    assert dup.status == "duplicate" and dup.id == "cmd-1"
    assert dup.result == {"first_handled_at": "2023-11-14T22:13:20.000Z", "first_status": "ok", "first_reason": None}
    assert dup.reason is not None and "already handled at 2023-11-14T22:13:20.000Z: ok" in dup.reason
    assert dup_row.idem_key == first_row.idem_key and dup_row.id > first_row.id


def test_router__redelivery_after_expiry_is_still_a_duplicate(harness: Harness) -> None:
    body = command(expires_at="2023-11-14T22:14:00Z")
    assert harness.send("test/do", body) == "ok"
    harness.clock.now += 3600
    assert harness.send("test/do", body) == "duplicate"
    assert harness.handler.calls == ["cmd-1"]


def test_router__rejected_id_stays_rejected_when_redelivered(harness: Harness) -> None:
    assert harness.send("reboot", command(name="reboot")) == "rejected"
    assert harness.send("reboot", command(name="reboot")) == "duplicate"
    _, dup = harness.results()[1]
    assert dup.result["first_status"] == "rejected" and "unknown command" in dup.result["first_reason"]


class FailingCall:
    """Wraps a writer; its ``call`` number ``fail_on`` (1-based) fails like a crash before the commit."""

    def __init__(self, writer: Writer, fail_on: int) -> None:
        self.writer, self.fail_on, self.calls = writer, fail_on, 0

    def call(self, task: Callable[[sqlite3.Connection], Any], timeout: float | None = 30.0) -> Any:
        self.calls += 1
        if self.calls == self.fail_on:
            raise sqlite3.OperationalError("disk I/O error")
        return self.writer.call(task, timeout)


def test_router__crash_between_applying_and_recording_is_never_applied_again(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    clock, handler, esl = Clock(), Counting(), FakeEsl()
    writer = make_writer(fresh_db)
    # Call 1 claims the id; call 2 (the result) fails as if the process died after the handler ran.
    router = make_router(FailingCall(writer, fail_on=2), clock, handler, esl)
    harness = Harness(router, fresh_db, clock, handler, esl)
    harness.send("test/do", command())
    assert harness.recorded() == {"cmd-1": ("applying", None)}
    assert harness.results() == []

    clock.now += 5
    assert harness.send("test/do", command()) == "duplicate"

    assert handler.calls == ["cmd-1"]
    [(_, result)] = harness.results()
    assert result.status == "duplicate" and result.result["first_status"] == "applying"
    assert result.reason is not None and result.reason.startswith("interrupted while applying")


def test_router__command_that_cannot_be_recorded_is_not_applied(fresh_db: Path, make_writer: MakeWriter) -> None:
    clock, handler, esl = Clock(), Counting(), FakeEsl()
    router = make_router(FailingCall(make_writer(fresh_db), fail_on=1), clock, handler, esl)
    assert router.handle(TOPICS.cmd("test/do"), json.dumps(command()).encode(), None) == "failed"
    assert handler.calls == []


# -- handler outcomes -----------------------------------------------------------------------------------------------


def _raise(err: Exception) -> Callable[[Command], dict[str, Any]]:
    def action(command: Command) -> dict[str, Any]:
        raise err

    return action


@pytest.mark.parametrize(("error", "status", "reason"), [
    (CommandRejected("price must be positive"), "rejected", "price must be positive"),
    (CommandError("access point timed out"), "failed", "access point timed out"),
    (RuntimeError("boom"), "failed", "internal error: RuntimeError: boom"),
])
def test_router__handler_exceptions_map_to_rejected_or_failed(
        fresh_db: Path, make_writer: MakeWriter, error: Exception, status: str, reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    clock, handler, esl = Clock(), Counting(_raise(error)), FakeEsl()
    harness = Harness(make_router(make_writer(fresh_db), clock, handler, esl), fresh_db, clock, handler, esl)
    with caplog.at_level(logging.INFO, logger="sync.commands"):
        assert harness.send("test/do", command()) == status
        assert harness.send("test/do", command()) == "duplicate"
    assert handler.calls == ["cmd-1"]
    [(_, result), _dup] = harness.results()
    assert (result.status, result.reason) == (status, reason)
    assert harness.recorded() == {"cmd-1": (status, reason)}
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == (1 if isinstance(error, RuntimeError) else 0)


def test_router__result_that_is_not_json_is_a_failure(harness: Harness) -> None:
    harness.router.set_handlers({"test/do": lambda c: {"when": object()}})
    assert harness.send("test/do", command()) == "failed"
    [(_, result)] = harness.results()
    assert result.reason is not None and result.reason.startswith("internal error: TypeError")


# -- built-in handlers and driver routing ---------------------------------------------------------------------------


def test_router__commandable_driver_receives_esl_update(harness: Harness) -> None:
    assert isinstance(harness.esl, Commandable)
    assert harness.send("esl/update", command("esl/update", args={"label": "L-1", "price": "1.99"})) == "ok"
    assert harness.send("esl/update", command("esl/update", cid="cmd-2", args={})) == "rejected"
    assert harness.esl.applied == [{"label": "L-1", "price": "1.99"}]
    ok, rejected = (r for _, r in harness.results())
    assert ok.result == {"label": "L-1", "updated": True}
    assert rejected.reason == "esl/update needs 'label'"


def test_ping__answers_version_and_uptime(harness: Harness) -> None:
    assert harness.send("ping", command("ping")) == "ok"
    assert harness.send("ping", command("ping", cid="cmd-2", args={"x": 1})) == "rejected"
    ok, rejected = (r for _, r in harness.results())
    assert ok.result == {"pong": True, "version": "1.2.3", "uptime_s": 10.0}
    assert rejected.reason == "ping takes no arguments (got: x)"


def test_config_reload__invalid_config_is_rejected_with_its_problems() -> None:
    def reload() -> dict[str, Any]:
        raise ConfigError("invalid", ["devices[0].port: field required", "sync.keepalive_s: too small"])

    handle = config_reload_handler(reload)
    with pytest.raises(CommandRejected, match=r"^devices\[0\]\.port: field required; sync.keepalive_s: too small$"):
        handle(Command.model_validate(command("config/reload")))
    applied = config_reload_handler(lambda: {"devices_started": ["till-2"]})
    assert applied(Command.model_validate(command("config/reload"))) == {"devices_started": ["till-2"]}


def test_driver_handlers__two_drivers_claiming_one_command_is_an_error() -> None:
    with pytest.raises(ConfigError, match="esl/update"):
        driver_handlers([FakeEsl(), FakeEsl()])
    table: dict[str, Handler] = {"ping": lambda c: {}}
    with pytest.raises(ConfigError, match="'ping'"):
        merge_handlers(table, table)


# -- logging ------------------------------------------------------------------------------------------------------


def test_router__rejections_logged_once_per_kind_per_minute_without_payload_contents(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    secret = "SECRET-PAYLOAD-VALUE"
    with caplog.at_level(logging.INFO, logger="sync.commands"):
        for i in range(5):
            harness.send("test/do", command(cid=f"f-{i}", store="s2", args={"price": secret}))
        harness.send("test/do", command(cid="x-1", **{secret: 1}))
        harness.clock.now += 61
        harness.send("test/do", command(cid="f-9", store="s2"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings
    assert "addressed to another store" in warnings[0] and "'f-0'" in warnings[0]
    assert "not a valid command" in warnings[1]
    assert "4 more like it" in warnings[2]
    assert secret not in caplog.text and "s2" not in caplog.text
    assert len(harness.results()) == 7  # every one is still answered


# -- robustness ---------------------------------------------------------------------------------------------------

FIELD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.sampled_from(
    ["cmd-1", "test/do", "ping", STORE, "s2", "2023-11-14T22:13:00Z", "2099-01-01T00:00:00Z"]),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.lists(st.integers(), max_size=2))
NEAR_COMMANDS = st.dictionaries(
    st.sampled_from(["v", "id", "name", "store", "issued_at", "expires_at", "args", "extra"]), FIELD_VALUES,
).map(lambda d: json.dumps(d).encode())
PAYLOADS = st.one_of(st.binary(max_size=512), NEAR_COMMANDS, NEAR_COMMANDS.map(zlib.compress),
                     st.binary(max_size=64).map(zlib.compress))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=PAYLOADS, content_type=st.sampled_from([None, CONTENT_TYPE_JSON, CONTENT_TYPE_ZLIB, "x/y"]),
       name=st.sampled_from(["test/do", "ping", "nope"]))
def test_router__never_raises_and_answers_every_payload_once(
        harness: Harness, payload: bytes, content_type: str | None, name: str) -> None:
    before = len(harness.results())
    status = harness.router.handle(TOPICS.cmd(name), payload, content_type)
    assert status in {"ok", "rejected", "failed", "duplicate"}
    results = harness.results()
    assert len(results) == before + 1
    assert results[-1][1].status == status
