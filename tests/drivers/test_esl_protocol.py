"""The OpenEPaperLink protocol as data: label ids, tag records, /get_db pages, websocket messages, the AP's health
rules and how a tag record moves a label update."""

import json

import pytest

from drivers.esl.protocol import (
    DEEP_SLEEP_CHECKIN,
    Ignored,
    LabelUpdate,
    Rebooting,
    SysStatus,
    TagRecord,
    TagsUpdate,
    Transfer,
    is_low_battery,
    is_timed_out,
    judge,
    normalize_mac,
    parse_db_page,
    parse_tag,
    parse_ws,
    worth_history,
)

RECORD = {"mac": "0000021CA3B4C5D6", "hash": "00" * 16, "lastseen": 1_700_000_000, "nextupdate": 0,
          "nextcheckin": 1_700_000_040, "pending": 0, "alias": "", "contentMode": 19, "LQI": 90, "RSSI": -61,
          "temperature": 21, "batteryMv": 2950, "hwType": 1, "wakeupReason": 0, "capabilities": 1,
          "modecfgjson": "", "isexternal": False, "apip": "0.0.0.0", "rotate": 0, "lut": 0, "invert": 0,
          "updatecount": 7, "updatelast": 1_699_990_000, "ch": 11, "ver": 38}


def record(**changes: object) -> TagRecord:
    return parse_tag({**RECORD, **changes})


@pytest.mark.parametrize(("text", "expected"), [
    ("0000021CA3B4C5D6", "0000021CA3B4C5D6"),
    ("0000021ca3b4c5d6", "0000021CA3B4C5D6"),
    ("02:1C:A3:B4:C5:D6", "0000021CA3B4C5D6"),
    ("021CA3B4C5D6", "0000021CA3B4C5D6"),
    ("5901234123457", None),
    ("021CA3B4C5DZ", None),
    ("", None),
])
def test_normalize_mac__accepts_16_or_12_hex_digits_like_the_ap(text: str, expected: str | None) -> None:
    assert normalize_mac(text) == expected


def test_parse_tag__reads_the_fields_the_gateway_uses() -> None:
    tag = record()
    assert (tag.mac, tag.hw_type, tag.battery_mv, tag.rssi, tag.lqi) == ("0000021CA3B4C5D6", 1, 2950, -61, 90)
    assert (tag.lastseen, tag.nextcheckin, tag.pending, tag.updatecount, tag.version) == (
        1_700_000_000.0, 1_700_000_040.0, 0, 7, 38)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"mac": "nope"}, "mac"),
    ({"hwType": None}, "hwType"),
    ({"batteryMv": "low"}, "batteryMv"),
])
def test_parse_tag__names_what_is_wrong(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_tag({**RECORD, **changes})


def test_parse_db_page__returns_records_the_next_position_and_skips_malformed_ones() -> None:
    page = json.dumps({"tags": [RECORD, {**RECORD, "mac": "bad"}, {**RECORD, "mac": "0000021CA3B4C5D7"}],
                       "continu": 3})
    records, following, bad = parse_db_page(page)
    assert [r.mac for r in records] == ["0000021CA3B4C5D6", "0000021CA3B4C5D7"]
    assert (following, bad) == (3, 1)
    assert parse_db_page(json.dumps({"tags": [RECORD]}))[1] is None


@pytest.mark.parametrize("body", ['{"error": "malformatted parameter"}', '{"tags": [', "[]"])
def test_parse_db_page__an_error_or_truncated_page_is_not_a_tag_list(body: str) -> None:
    with pytest.raises(ValueError):
        parse_db_page(body)


def test_parse_ws__classifies_every_message_the_gateway_acts_on() -> None:
    sys_msg = parse_ws(json.dumps({"sys": {"apstate": 1, "runstate": 2, "lowbattcount": 3, "timeoutcount": 1}}))
    assert sys_msg == SysStatus("online", "run", 3, 1)
    tags = parse_ws(json.dumps({"tags": [RECORD, {"mac": 5}]}))
    assert isinstance(tags, TagsUpdate) and [r.mac for r in tags.records] == ["0000021CA3B4C5D6"]
    assert tags.malformed == 1
    assert parse_ws('{"logMsg": "0000021CA3B4C5D6 reports xfer complete"}') == Transfer("0000021CA3B4C5D6", True)
    assert parse_ws('{"errMsg": "< 0000021CA3B4C5D6 xfer timeout"}') == Transfer("0000021CA3B4C5D6", False)
    assert isinstance(parse_ws('{"errMsg": "REBOOTING"}'), Rebooting)
    assert parse_ws('{"upload": {"src": "0000021CA3B4C5D6", "current": 1, "total": 2}}') == Ignored("upload")
    for bad in ("not json", "[1]", "{}"):
        with pytest.raises(ValueError):
            parse_ws(bad)


def test_low_battery__below_threshold_but_never_the_ap_sentinels() -> None:
    assert is_low_battery(2390, 2400)
    assert not is_low_battery(2400, 2400)
    assert not is_low_battery(0, 2400)
    assert not is_low_battery(1337, 2400)
    assert not is_low_battery(None, 2400)


def test_timed_out__the_ap_rule_needs_both_an_overdue_checkin_and_silence() -> None:
    seen = 1_700_000_000.0
    tag = record(lastseen=int(seen), nextcheckin=int(seen) + 40)
    # maxsleep 10 min: silent for > 900 s and > 600 s past the expected check-in.
    assert not is_timed_out(tag, seen + 600, maxsleep_min=10, grace_s=600)
    assert not is_timed_out(tag, seen + 641, maxsleep_min=10, grace_s=600)  # overdue, not silent long enough
    assert is_timed_out(tag, seen + 901, maxsleep_min=10, grace_s=600)
    asleep = record(lastseen=int(seen), nextcheckin=DEEP_SLEEP_CHECKIN)
    assert not is_timed_out(asleep, seen + 86_400, maxsleep_min=10, grace_s=600)


def test_worth_history__changes_a_technician_follows_but_not_plain_checkins() -> None:
    base = record()
    assert worth_history(None, base)
    assert not worth_history(base, record(RSSI=-70, lastseen=RECORD["lastseen"] + 40))  # type: ignore[operator]
    assert worth_history(base, record(batteryMv=2890))
    assert worth_history(base, record(pending=1))
    assert worth_history(base, record(updatecount=8))
    assert worth_history(base, record(wakeupReason=4))


def update(state: str, before: int = 7) -> LabelUpdate:
    return LabelUpdate(id=1, label="0000021CA3B4C5D6", gtin="05901234123457", command_id="c1", due_at=0.0,
                       state=state, updatecount_before=before)  # type: ignore[arg-type]


def test_judge__sent_then_pending_then_confirmed_by_the_update_count() -> None:
    assert judge(update("sent"), record(pending=0)) is None  # a check-in from before the upload
    assert judge(update("sent"), record(pending=1)) == "pending"
    assert judge(update("pending"), record(pending=1)) is None
    assert judge(update("pending"), record(pending=0, updatecount=8)) == "confirmed"
    assert judge(update("sent"), record(pending=0, updatecount=8)) == "confirmed"  # the pending record was missed


def test_judge__a_queue_cleared_without_a_new_count_is_a_failed_transfer() -> None:
    assert judge(update("pending"), record(pending=0, updatecount=7)) == "transfer_failed"
    assert judge(update("queued"), record(pending=0, updatecount=9)) is None
