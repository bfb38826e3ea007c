"""Shelf labels end to end: the daemon as a process with a pty scanner and the fake OpenEPaperLink AP, commands
from HQ over a real mosquitto, and the technician's CLI (pairing by scan, bind, push, labels, pending)."""

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner
from simulators.broker import Broker
from simulators.esl import FakeAP
from sync.hq.receiver import Receiver
from tests.e2e.conftest import Daemon, edge_command, wait_for
from tests.e2e.test_sync_e2e import _command, _hq, _publish_command, hq_broker, receiver  # noqa: F401

COFFEE = SimScan(aim="]E0", payload="4006381333931", valid=True, kind="gtin", gtin="04006381333931")
TEA = "05901234123457"


@pytest.fixture
def ap() -> Iterator[FakeAP]:
    """A small fleet checking in every second."""
    instance = FakeAP(12, seed=3, checkin_s=1.0, upload_s=0.005, transfer_kbps=200.0, sys_interval_s=0.5)
    instance.start()
    yield instance
    instance.stop()


def _sections(link: Path, ap: FakeAP, broker_url: str) -> str:
    return f"""
[sync]
enabled = true
broker = "{broker_url}"
batch_window_s = 10
health_every_s = 5
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[[devices]]
type = "barcode"
name = "pairing-1"
port = "{link}"
reconnect_max_s = 0.5

[[devices]]
type = "esl"
name = "ap-1"
url = "{ap.url}"
pairing_scanners = ["pairing-1"]
window_s = 10
reconcile_s = 30
confirm_deadline_s = 60
"""


def _cli(edge: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(edge_command("esl", *args, "--config", str(edge.config)), capture_output=True, text=True,
                          check=False, timeout=60)


def _labels(edge: Daemon, *flags: str) -> list[dict[str, object]]:
    out = _cli(edge, "labels", "--json", *flags)
    return json.loads(out.stdout)["labels"] if out.returncode == 0 and out.stdout else []


def _bindings(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT label, gtin FROM esl_bindings").fetchall())


def test_esl__pairing_by_scan_cli_push_and_hq_updates_end_to_end(
    tmp_path: Path, daemon: Callable[[str], Daemon], ap: FakeAP, hq_broker: Broker, receiver: Receiver  # noqa: F811
) -> None:
    link = tmp_path / "pairing"
    scanner = PtyScanner(link)
    scanner.start()
    edge = daemon(_sections(link, ap, hq_broker.url))
    edge.start()
    hq_db = tmp_path / "hq.db"
    first, second = ap.macs()[:2]
    try:
        wait_for(lambda: len(_labels(edge)) == 12, 30, "the AP's labels to be listed")
        assert scanner.wait_for_reader(10)
        # A price arrives before any label is bound: kept for the label that will show it.
        pushed = _cli(edge, "push", COFFEE.gtin or "", "--price", "4.29", "--name", "Coffee beans", "--json")
        assert pushed.returncode == 0, pushed.stderr
        assert json.loads(pushed.stdout)["unbound"] == 1

        # Pairing: the label's barcode (its id, Code 128), then the product's EAN-13, on the pairing scanner.
        scanner.send(SimScan(aim="]C0", payload=first[4:], valid=False, kind="other"))
        scanner.send(COFFEE)
        wait_for(lambda: _bindings(edge.db).get(first) == COFFEE.gtin, 20, "the scan pairing")
        wait_for(lambda: "Coffee beans" in json.dumps(ap.content(first)), 30, "the paired label to show the price")
        assert ap.stats["led_flashes"] >= 2, "the label flashed when scanned and when bound"

        bound = _cli(edge, "bind", second, TEA, "--json")
        assert bound.returncode == 0, bound.stderr
        assert json.loads(bound.stdout)["content"] == "no price known for this GTIN yet"
        refused = _cli(edge, "bind", "00000000DEADBEEF", TEA)
        assert refused.returncode == 1 and "not known" in refused.stderr

        # HQ: one good update for both products, then malformed, foreign-store and duplicate commands.
        wait_for(lambda: edge.status().get("sync", {}).get("connected") is True, 20, "the uplink")
        update = {"items": [{"gtin": COFFEE.gtin, "price": "3.99", "currency": "EUR", "name": "Coffee beans"},
                            {"gtin": TEA, "price": "2.49", "promo_price": "1.99", "currency": "EUR", "name": "Tea"}]}
        sent = [
            _command("esl-1", name="esl/update", args=update),
            _command("esl-2", name="esl/update", args={"items": [{"gtin": TEA, "price": "x", "currency": "EUR"}]}),
            _command("esl-3", name="esl/update", store="other-store", args=update),
            _command("esl-1", name="esl/update", args=update),
        ]
        for payload in sent:
            _publish_command(hq_broker, "esl/update", payload)

        def results() -> dict[int, dict[str, object]]:
            return {seq: json.loads(p) for seq, (kind, _, _, p) in _hq(hq_db).items() if kind == "cmd_result"}

        wait_for(lambda: len(results()) >= 4, 20, "a result for every command")
        by_order = [results()[seq] for seq in sorted(results())]
        assert [(r["id"], r["status"]) for r in by_order] == [
            ("esl-1", "ok"), ("esl-2", "rejected"), ("esl-3", "rejected"), ("esl-1", "duplicate")]
        assert by_order[0]["result"]["labels_queued"] == 2  # type: ignore[index]
        assert "items[0].price" in str(by_order[1]["reason"])
        wait_for(lambda: "3,99" in json.dumps(ap.content(first)) and "1,99" in json.dumps(ap.content(second)),
                 30, "both labels to show HQ's prices")
        wait_for(lambda: _cli(edge, "pending", "--json").stdout.count('"id"') == 0, 20, "no open update")

        def esl_rows() -> list[dict[str, object]]:
            return [row for kind, _, _, p in _hq(hq_db).values() if kind == "esl" for row in json.loads(p)["rows"]]

        wait_for(lambda: sum(int(r["confirmed"]) for r in esl_rows()) >= 3, 40, "agg/esl with the confirmations")
        progress = [c for r in esl_rows() for c in r["commands"] if c["command_id"] == "esl-1"]  # type: ignore[attr-defined]
        assert progress and progress[-1]["open"] == 0 and progress[-1]["failed"] == 0
        device = edge.device("ap-1")
        assert device.get("state") == "ok", device
    finally:
        assert edge.stop() == 0
        scanner.stop()
