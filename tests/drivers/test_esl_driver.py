"""The ESL driver against the fake OpenEPaperLink AP (a real HTTP + websocket server on loopback) and a real store
writer: price updates to a 2,000-label fleet, AP outages and reboots, partial /get_db, websocket drops, restarts;
and the update book's reboot rules on their own, since it has no I/O."""

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.barcode.gs1 import gtin_check_digit
from drivers.esl.config import EslConfig
from drivers.esl.driver import EslDriver
from drivers.esl.protocol import LabelUpdate, TagRecord
from drivers.esl.updates import UpdateBook
from edge import const
from edge.driver import DriverContext
from edge.errors import CommandRejected
from edge.health import DeviceMonitor
from edge.store.writer import Writer
from simulators.esl import FakeAP, SimTag, make_fleet
from tests.conftest import MakeWriter
from tests.drivers.helpers import Collect, wait_for
from tests.test_conventions import IO_LIBRARIES, _imports


def gtin(n: int) -> str:
    """A valid GTIN-14 for product number ``n``."""
    body = f"0400{n:09d}"
    return body + str(gtin_check_digit(body))


@dataclass
class Rig:
    ap: FakeAP
    writer: Writer
    db: Path
    monitor: DeviceMonitor
    driver: EslDriver

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        return self.writer.call(lambda conn: conn.execute(sql, args).fetchall())

    def states(self) -> dict[str, int]:
        return dict(self.query(f"SELECT state, count(*) FROM {const.TABLE_ESL_UPDATES} GROUP BY state"))

    def open_updates(self) -> int:
        return sum(n for state, n in self.states().items() if state in ("queued", "sent", "pending"))

    def bind(self, pairs: list[tuple[str, str]]) -> None:
        def task(conn: sqlite3.Connection) -> None:
            conn.executemany(f"INSERT INTO {const.TABLE_ESL_BINDINGS} (label, gtin, bound_at, source) "
                             "VALUES (?, ?, 0, 'test')", pairs)
        self.writer.call(task)

    def labels(self) -> int:
        return int(self.query(f"SELECT count(*) FROM {const.TABLE_ESL_LABELS} WHERE missing_since IS NULL")[0][0])


MakeRig = Callable[..., Rig]


@pytest.fixture
def make_rig(fresh_db: Path, make_writer: MakeWriter) -> Iterator[MakeRig]:
    made: list[Rig] = []

    def make(tags: int | list[SimTag] = 50, *, config: dict[str, Any] | None = None, **ap_options: Any) -> Rig:
        ap = FakeAP(tags, **{"checkin_s": 1.0, "upload_s": 0.002, "sys_interval_s": 0.5, **ap_options})
        ap.start()
        writer = make_writer(fresh_db)
        settings = {"name": "ap-1", "type": "esl", "url": ap.url, "min_upload_interval_s": 0.0,
                    "busy_backoff_s": 0.2, "busy_backoff_max_s": 1.0, "http_timeout_s": 2.0,
                    "confirm_deadline_s": 30.0, "reconcile_s": 5.0, "window_s": 10, "reconnect_max_s": 1.0,
                    **(config or {})}
        monitor = DeviceMonitor(name="ap-1", kind="esl")
        driver = EslDriver(EslConfig.model_validate(settings), DriverContext(monitor, Collect(), None, writer))
        rig = Rig(ap, writer, fresh_db, monitor, driver)
        made.append(rig)
        driver.start()
        wait_for(lambda: rig.labels() == (tags if isinstance(tags, int) else len(tags)), timeout=30)
        return rig

    yield make
    for rig in made:
        rig.driver.stop()
        rig.ap.stop()


def items(numbers: range, price: str = "1.99", **extra: Any) -> dict[str, Any]:
    return {"items": [{"gtin": gtin(n), "price": price, "currency": "EUR", "name": f"Product {n}", **extra}
                      for n in numbers]}


def test_driver__2000_labels_with_5_percent_failing_transfers_all_end_confirmed_or_failed(make_rig: MakeRig) -> None:
    fleet = make_fleet(2000, 1, 0.05, 0.02)
    rig = make_rig(fleet, checkin_s=3.0, config={"confirm_deadline_s": 60.0})
    macs = rig.ap.macs()
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(macs)])

    result = rig.driver.handle_command("esl/update", items(range(len(macs))), "cmd-2000")

    assert result["labels_queued"] == 2000 and result["unbound"] == 0
    wait_for(lambda: rig.open_updates() == 0, timeout=120)
    states = rig.states()
    failing = {tag.mac for tag in fleet if tag.failing}
    assert len(failing) == 100
    failed = dict(rig.query(f"SELECT label, reason FROM {const.TABLE_ESL_UPDATES} WHERE state = 'failed'"))
    assert states == {"confirmed": 1900, "failed": 100}, {k: v for k, v in failed.items() if k not in failing}
    assert set(failed) == failing
    assert all(reason.startswith("transfer timed out 2 time(s)") for reason in failed.values())
    # Confirmed means the label shows it: the simulator's display holds the price we sent.
    for index, mac in enumerate(macs[:40]):
        if mac not in failing:
            shown = json.dumps(rig.ap.content(mac))
            assert "1,99" in shown and f"Product {index}" in shown  # EUR is written 1,99
    assert rig.ap.stats["max_concurrent_uploads_seen"] == 1, "one upload in flight"


def test_driver__ap_offline_mid_batch_and_get_db_stalling_halfway_resume_without_deleting_labels(
    make_rig: MakeRig,
) -> None:
    rig = make_rig(300, config={"reconcile_s": 1000.0, "get_db_retries": 1})
    macs = rig.ap.macs()
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(macs)])
    rig.driver.handle_command("esl/update", items(range(300), price="3.49"), "cmd-outage")
    wait_for(lambda: rig.ap.stats["uploads_ok"] >= 80, timeout=30)
    rig.ap.set_offline(True)
    wait_for(lambda: rig.monitor.counters["uploads_unreachable"] >= 1, timeout=10)
    uploads_while_off = rig.ap.stats["uploads_ok"]
    rig.ap.stall_get_db(after_pages=2, stall_s=5.0)  # longer than the driver's 2 s HTTP timeout
    rig.ap.set_offline(False)

    wait_for(lambda: rig.monitor.counters["get_db_partial"] >= 1, timeout=30)
    assert rig.labels() == 300, "a partial /get_db never deletes or hides labels"
    wait_for(lambda: rig.open_updates() == 0, timeout=90)
    assert rig.states() == {"confirmed": 300}
    assert rig.ap.stats["uploads_ok"] > uploads_while_off, "the batch resumed after the outage"
    missing = rig.query(f"SELECT count(*) FROM {const.TABLE_ESL_LABELS} WHERE missing_since IS NOT NULL")[0][0]
    assert missing == 0


def test_driver__websocket_drop_reconnects_and_reconciles(make_rig: MakeRig) -> None:
    rig = make_rig(40, config={"reconcile_s": 1000.0})
    pages_before = rig.monitor.counters["get_db_pages"]
    macs = rig.ap.macs()
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(macs)])
    rig.driver.handle_command("esl/update", items(range(40), price="0.99"), "cmd-drop")
    wait_for(lambda: rig.ap.stats["uploads_ok"] >= 40, timeout=30)
    rig.ap.drop_websockets()

    wait_for(lambda: rig.monitor.counters["ws_disconnects"] >= 1, timeout=10)
    wait_for(lambda: rig.monitor.counters["get_db_pages"] > pages_before, timeout=20)
    wait_for(lambda: rig.open_updates() == 0, timeout=30)
    assert rig.states() == {"confirmed": 40}
    wait_for(lambda: rig.monitor.state == "ok", timeout=10)


def test_driver__reboot_is_reported_and_the_queue_waits_for_the_ap(make_rig: MakeRig) -> None:
    rig = make_rig(30)
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(rig.ap.macs())])
    rig.ap.reboot(down_s=2.0)
    wait_for(lambda: rig.monitor.state != "ok", timeout=10)
    rig.driver.handle_command("esl/update", items(range(30)), "cmd-reboot")
    wait_for(lambda: rig.open_updates() == 0, timeout=60)
    assert rig.states() == {"confirmed": 30}
    wait_for(lambda: rig.monitor.state == "ok", timeout=10)


def test_driver__silent_label_fails_at_the_deadline_and_low_batteries_are_counted(make_rig: MakeRig) -> None:
    rig = make_rig(20, low_battery_share=0.2, transfer_kbps=200.0, config={"confirm_deadline_s": 4.0})
    macs = rig.ap.macs()
    rig.ap.silence(macs[0])
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(macs)])
    rig.driver.handle_command("esl/update", items(range(20)), "cmd-silent")
    wait_for(lambda: rig.open_updates() == 0, timeout=30)
    reasons = dict(rig.query(f"SELECT label, reason FROM {const.TABLE_ESL_UPDATES} WHERE state = 'failed'"))
    assert list(reasons) == [macs[0]] and "not confirmed within 4 s" in reasons[macs[0]]
    expected_low = sum(1 for mac in macs if 0 < int(rig.ap.tag(mac)["batteryMv"]) < 2400  # type: ignore[call-overload]
                       and rig.ap.tag(mac)["batteryMv"] != 1337)
    assert expected_low >= 4
    assert rig.driver.health_counts(0.0)["low_battery"] == expected_low


def test_driver__future_valid_from_is_applied_on_time(make_rig: MakeRig) -> None:
    from datetime import UTC, datetime, timedelta

    rig = make_rig(5)
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(rig.ap.macs())])
    due = datetime.now(UTC) + timedelta(seconds=3)
    result = rig.driver.handle_command("esl/update", items(range(5), valid_from=due.isoformat()), "cmd-later")
    assert result["scheduled"] == 5
    wait_for(lambda: rig.ap.stats["uploads_ok"] >= 1, timeout=10)
    first_upload = datetime.now(UTC)
    assert first_upload >= due, "nothing is uploaded before valid_from"
    wait_for(lambda: rig.open_updates() == 0, timeout=30)
    assert rig.states() == {"confirmed": 5}


def test_driver__a_new_update_supersedes_an_open_one_and_identical_content_is_not_resent(make_rig: MakeRig) -> None:
    rig = make_rig(3)
    mac = rig.ap.macs()[0]
    rig.bind([(mac, gtin(1))])
    rig.ap.silence(mac)
    rig.driver.handle_command("esl/update", items(range(1, 2), price="5.00"), "cmd-a")
    rig.driver.handle_command("esl/update", items(range(1, 2), price="4.00"), "cmd-b")
    reasons = rig.query(f"SELECT command_id, state, reason FROM {const.TABLE_ESL_UPDATES} ORDER BY id")
    assert reasons[0] == ("cmd-a", "failed", "superseded by command cmd-b")


def test_driver__malformed_update_commands_are_rejected_with_the_field(make_rig: MakeRig) -> None:
    rig = make_rig(3)
    cases = [
        ({}, "needs 'items'"),
        ({"items": [{"gtin": "4006381333931", "price": "1.00", "currency": "EUR"}], "x": 1}, "takes only 'items'"),
        ({"items": [{"gtin": "4006381333932", "price": "1.00", "currency": "EUR"}]}, "items[0].gtin"),
        ({"items": [{"gtin": "4006381333931", "price": "1.00", "currency": "EUR"}] * 2}, "more than once"),
    ]
    for args, message in cases:
        with pytest.raises(CommandRejected, match=message.replace("[", r"\[").replace("]", r"\]")):
            rig.driver.handle_command("esl/update", args, "bad")
    assert rig.states() == {}


@pytest.mark.parametrize("content", ["image", "json"])
def test_driver__updates_awaiting_their_label_at_an_ap_reboot_are_sent_again_without_charging_a_transfer(
    make_rig: MakeRig, content: str,
) -> None:
    # Slow check-ins keep most labels waiting (sent/pending) when the AP reboots and drops its RAM queues; one
    # transfer attempt makes any reboot read as a transfer failure fail its update at once.
    rig = make_rig(20, checkin_s=5.0, transfer_kbps=50.0,
                   config={"content": content, "transfer_attempts": 1,
                           "confirm_deadline_s": 60.0})
    rig.bind([(mac, gtin(i)) for i, mac in enumerate(rig.ap.macs())])
    rig.driver.handle_command("esl/update", items(range(20)), "cmd-reboot-pending")
    wait_for(lambda: rig.ap.stats["uploads_ok"] >= 20, timeout=10)
    rig.ap.reboot(down_s=1.0, coming_online_s=3.0)

    wait_for(lambda: rig.open_updates() == 0, timeout=25)  # a label checks in every 5 s; the deadline is 60 s
    assert rig.states() == {"confirmed": 20}
    assert rig.monitor.counters["updates_requeued_at_reboot"] >= 5, "the reboot caught updates awaiting labels"
    assert rig.monitor.counters["transfers_failed"] == 0


# -- the update book on its own --------------------------------------------------------------------------------

MAC = "0000A0B1C2D3E4F5"


def record(updatecount: int, pending: int) -> TagRecord:
    return TagRecord(mac=MAC, hw_type=1, battery_mv=2900, rssi=-60, lqi=100, temperature=21, lastseen=1.0,
                     nextcheckin=41.0, pending=pending, wakeup_reason=0, capabilities=0, updatecount=updatecount,
                     updatelast=None, hash=None, version=None, channel=None)


def pending_book(*, ap_keeps_content: bool) -> tuple[UpdateBook, LabelUpdate, list[str]]:
    """A book whose one update the AP accepted and queued for its label (update count 5 before the upload)."""
    counted: list[str] = []
    book = UpdateBook(upload_attempts=4, transfer_attempts=1, confirm_deadline_s=60.0,
                      ap_keeps_content=ap_keeps_content, count=lambda name, n: counted.extend([name] * n),
                      wake=lambda: None)
    update = LabelUpdate(id=1, label=MAC, gtin="04000000000017", command_id="c", due_at=0.0)
    book.enqueue([update], now=0.0)
    assert book.next_due(0.0) == (update, None)
    book.sent(update, "d1", 5, record(5, 0), 1.0, transfer_failed=False)
    book.observe(record(5, 1), 1.5)
    assert update.state == "pending"
    return book, update, counted


@pytest.mark.parametrize("ap_keeps_content", [False, True], ids=["image", "json"])
def test_update_book__a_reboot_queues_accepted_updates_again_without_charging_a_transfer(
    ap_keeps_content: bool,
) -> None:
    book, update, counted = pending_book(ap_keeps_content=ap_keeps_content)

    assert book.rebooted(2.0) == 1
    book.observe(record(5, 0), 3.0)  # the rebooted AP lists the label with an empty queue

    assert (update.state, update.transfers) == ("queued", 0)
    assert book.next_due(3.0) == (update, None), "uploaded again at once"
    assert "transfers_failed" not in counted and counted == ["updates_requeued_at_reboot"]
    book.sent(update, "d1", 5, record(5, 0), 4.0, transfer_failed=False)
    book.observe(record(6, 0), 9.0)
    assert update.state == "confirmed" and MAC not in book.open


def test_update_book__json_the_ap_redraws_after_a_reboot_confirms_before_the_upload_again() -> None:
    # The label may take the template the AP redrew before the gateway uploads it again; the AP skips an upload of
    # what the label already shows, so waiting for that upload's transfer would only end at the deadline.
    book, update, _ = pending_book(ap_keeps_content=True)
    book.rebooted(2.0)
    book.observe(record(6, 0), 3.0)
    assert update.state == "confirmed" and book.shown[MAC] == "d1"
    assert book.next_due(3.0) == (None, None)


def test_update_book__an_image_lost_in_a_reboot_is_not_confirmed_by_another_transfer() -> None:
    book, update, _ = pending_book(ap_keeps_content=False)
    book.rebooted(2.0)
    book.observe(record(6, 0), 3.0)  # e.g. the label rebooted and the AP sent it what it showed before
    assert update.state == "queued"


@pytest.mark.parametrize("module", ["updates", "labels"])
def test_update_book_and_label_table__import_no_io_library(module: str) -> None:
    imported = _imports(Path(__file__).resolve().parents[2] / "drivers" / "esl" / f"{module}.py")
    assert not {name for name in imported if name.split(".")[0] in IO_LIBRARIES}
