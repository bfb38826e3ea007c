"""The fake OEPL access point, driven over real loopback HTTP and websocket like a driver would drive a real AP."""

import asyncio
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from simulators.esl import FakeAP, SimTag, jpeg_info, make_fleet
from simulators.esl.__main__ import main

Msg = dict[str, Any]
MakeAP = Callable[..., FakeAP]

RECORD_FIELDS = ["mac", "hash", "lastseen", "nextupdate", "nextcheckin", "pending", "alias", "contentMode", "LQI",
                 "RSSI", "temperature", "batteryMv", "hwType", "wakeupReason", "capabilities", "modecfgjson",
                 "isexternal", "apip", "rotate", "lut", "invert", "updatecount", "updatelast", "ch", "ver"]
TEMPLATE = '[{"text":[5,5,"Cola 1.5l","fonts/bahnschrift20",1]},{"box":[10,30,20,20,2]}]'
SAME_IMAGE = "new image is the same as current image. not updating tag."
OTHER_TEMPLATE = '[{"text":[5,5,"Cola 1.5l  -20%","fonts/bahnschrift20",2]}]'


@pytest.fixture
def make_ap() -> Iterator[MakeAP]:
    """A factory of started fake APs; every AP is stopped at teardown."""
    aps: list[FakeAP] = []

    def make(tags: int | list[SimTag] = 20, **knobs: Any) -> FakeAP:
        ap = FakeAP(tags, **knobs)
        aps.append(ap)
        ap.start()
        return ap

    yield make
    for ap in aps:
        ap.stop()


def _jpeg(width: int, height: int, *, progressive: bool = False, shade: int = 0) -> bytes:
    image = np.full((height, width, 3), 255, np.uint8)
    cv2.rectangle(image, (4, 4), (width // 2, height // 2), (shade, 0, 200), -1)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return buf.tobytes()


def _form(mac: str, image: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("mac", mac)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("image", image, filename="image.jpg", content_type="image/jpeg")
    return form


async def _wait_for(ws: aiohttp.ClientWebSocketResponse, match: Callable[[Msg], bool], within_s: float = 3.0) -> Msg:
    """The first ws message (parsed) for which ``match`` is true; fails if none arrives in time."""
    deadline = time.monotonic() + within_s
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no matching websocket message in time"
        try:
            msg = await ws.receive(timeout=remaining)
        except TimeoutError:
            continue
        assert msg.type == aiohttp.WSMsgType.TEXT, f"websocket ended: {msg}"
        data: Msg = json.loads(msg.data)
        if match(data):
            return data


def _record_of(mac: str, pred: Callable[[Msg], bool] = lambda _r: True) -> Callable[[Msg], bool]:
    return lambda m: "tags" in m and m["tags"][0]["mac"] == mac and pred(m["tags"][0])


def _tag_of_type(fleet: list[SimTag], hw_type: int, *, failing: bool = False, skip: int = 0) -> str:
    return [t.mac for t in fleet if t.hw_type == hw_type and t.failing == failing][skip]


async def _read_all_pages(session: aiohttp.ClientSession, url: str) -> list[tuple[int, str, Msg]]:
    pages, pos = [], 0
    while True:
        async with session.get(f"{url}/get_db", params={"pos": str(pos)}) as resp:
            body = await resp.text()
        page = json.loads(body)
        pages.append((pos, body, page))
        if "continu" not in page:
            return pages
        pos = page["continu"]


# --- fleet and JPEG header ----------------------------------------------------------------------------------------


def test_make_fleet__same_seed_same_fleet_with_exact_shares_and_sentinels() -> None:
    fleet = make_fleet(2000, 7, failing_share=0.05, low_battery_share=0.02)
    assert fleet == make_fleet(2000, 7, failing_share=0.05, low_battery_share=0.02)
    assert [t.mac for t in fleet] != [t.mac for t in make_fleet(2000, 8, failing_share=0.05)]
    assert all(re.fullmatch(r"0000[0-9A-F]{12}", t.mac) for t in fleet)
    assert len({t.mac for t in fleet}) == 2000
    assert sum(t.failing for t in fleet) == 100
    batteries = [t.battery_mv for t in fleet]
    assert sum(1 for mv in batteries if 0 < mv < 2400 and mv != 1337) == 40
    assert batteries.count(0) == 1 and batteries.count(1337) == 1
    assert sum(1 for mv in batteries if 2600 <= mv <= 3000) == 2000 - 40 - 2
    mix = Counter(t.hw_type for t in fleet)
    assert set(mix) == {0x00, 0x01, 0x02, 0x03, 0x33}
    assert mix[0x01] > 1000 and mix.most_common(1)[0][0] == 0x01


def test_jpeg_info__reads_size_and_progressive_flag() -> None:
    baseline = jpeg_info(_jpeg(296, 128))
    progressive = jpeg_info(_jpeg(296, 128, progressive=True))
    assert baseline is not None and (baseline.width, baseline.height, baseline.progressive) == (296, 128, False)
    assert progressive is not None and progressive.progressive
    assert jpeg_info(b"\x89PNG\r\n\x1a\n") is None
    assert jpeg_info(_jpeg(296, 128)[:20]) is None


# --- /get_db ----------------------------------------------------------------------------------------------------


def test_get_db__pages_hold_every_tag_once_with_continu_markers(make_ap: MakeAP) -> None:
    ap = make_ap(2000)

    async def run() -> list[tuple[int, str, Msg]]:
        async with aiohttp.ClientSession() as session:
            return await _read_all_pages(session, ap.url)

    pages = asyncio.run(run())
    macs = [rec["mac"] for _, _, page in pages for rec in page["tags"]]
    assert sorted(macs) == sorted(ap.macs())  # every tag, none twice
    assert len(pages) > 100
    for pos, body, page in pages[:-1]:
        records = [json.dumps(r, separators=(",", ":")) for r in page["tags"]]
        measured = len('{"tags":[]}') + sum(map(len, records)) + len(records) - 1
        assert measured > 5000 >= measured - len(records[-1]) - 1  # stops at the first record past 5000 bytes
        assert page["continu"] == pos + len(records)
        assert body.endswith(f'],"continu":{page["continu"]}}}')
    assert "continu" not in pages[-1][2]
    assert list(pages[0][2]["tags"][0]) == RECORD_FIELDS
    assert ap.stats["get_db_pages"] == len(pages)


def test_get_db__mac_lookup_pads_12_hex_and_rejects_malformed(make_ap: MakeAP) -> None:
    ap = make_ap(20, checkin_s=1000)  # no check-in between the requests
    mac = ap.macs()[3]

    async def run() -> list[str]:
        async with aiohttp.ClientSession() as session:
            bodies = []
            for query in (mac[4:].lower(), mac, "0000FFFFFFFFFFFF", "XYZ"):
                async with session.get(f"{ap.url}/get_db", params={"mac": query}) as resp:
                    assert resp.status == 200
                    bodies.append(await resp.text())
            return bodies

    short, full, unknown, bad = asyncio.run(run())
    assert short == full
    assert json.loads(full) == {"tags": [ap.tag(mac)]}
    assert unknown == '{"tags":[]}'
    assert bad == '{"error": "malformatted parameter"}'


def test_get_db__pos_is_a_byte_only_when_asked_to_copy_the_firmware(make_ap: MakeAP) -> None:
    wrapping, fixed = make_ap(300, pos_wraps=True), make_ap(300)

    async def first_mac(ap: FakeAP) -> str:
        async with aiohttp.ClientSession() as session, session.get(f"{ap.url}/get_db?pos=256") as resp:
            return str((await resp.json())["tags"][0]["mac"])

    assert asyncio.run(first_mac(wrapping)) == wrapping.macs()[0]
    assert asyncio.run(first_mac(fixed)) == fixed.macs()[256]


def test_stall_get_db__only_the_chosen_page_hangs_and_only_once(make_ap: MakeAP) -> None:
    ap = make_ap(200)
    ap.stall_get_db(after_pages=2, stall_s=0.8)

    async def run() -> list[float]:
        timings = []
        async with aiohttp.ClientSession() as session:
            for pos in (0, 14, 28, 42, 0, 14, 28):
                began = time.monotonic()
                async with session.get(f"{ap.url}/get_db", params={"pos": str(pos)}) as resp:
                    assert resp.status == 200
                    await resp.read()
                timings.append(time.monotonic() - began)
        return timings

    timings = asyncio.run(run())
    assert timings[2] >= 0.8
    assert max(timings[:2] + timings[3:]) < 0.4


# --- uploads and delivery ------------------------------------------------------------------------------------


def test_jsonupload__pending_until_checkin_then_xfc_shows_content(make_ap: MakeAP) -> None:
    fleet = make_fleet(20, seed=3)
    ap = make_ap(fleet, checkin_s=0.5, transfer_kbps=200)
    mac = _tag_of_type(fleet, 0x01)

    async def run() -> tuple[Msg, Msg, Msg, Msg]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            async with session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE, "ttl": "60"}) as r:
                assert (r.status, await r.text()) == (200, "Ok, saved")
            queued = await _wait_for(ws, _record_of(mac, lambda rec: rec["pending"] == 1))
            progress = await _wait_for(ws, lambda m: "upload" in m and m["upload"]["src"] == mac)
            done = await _wait_for(ws, lambda m: "xfer complete" in m.get("logMsg", ""))
            record = await _wait_for(ws, _record_of(mac))
            return queued, progress, done, record

    queued, progress, done, record = asyncio.run(run())
    rec = queued["tags"][0]
    assert (rec["contentMode"], rec["updatecount"]) == (19, 0)
    assert rec["modecfgjson"] == f'{{"filename":"/current/{mac}.json","interval":"60"}}'
    assert progress["upload"]["total"] == 3  # 296x128 at 2 bpp is 9472 bytes: three 4096-byte blocks
    assert done == {"logMsg": f"{mac} reports xfer complete\r\n"}
    md5 = hashlib.md5(TEMPLATE.encode()).hexdigest()
    assert record["tags"][0]["pending"] == 0
    assert record["tags"][0]["updatecount"] == 1
    assert record["tags"][0]["hash"] == md5[:16] + "0" * 16
    assert ap.content(mac) == json.loads(TEMPLATE)
    assert ap.stats["transfers_ok"] == 1


def test_failing_tag__xfer_timeout_clears_the_queue(make_ap: MakeAP) -> None:
    fleet = make_fleet(20, seed=3, failing_share=0.25)
    ap = make_ap(fleet, checkin_s=0.4, transfer_kbps=200)
    mac = next(t.mac for t in fleet if t.failing)

    async def run() -> Msg:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            async with session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE}) as r:
                assert r.status == 200
            await _wait_for(ws, lambda m: m.get("errMsg") == f"< {mac} xfer timeout\r\n")
            return await _wait_for(ws, _record_of(mac))

    record = asyncio.run(run())["tags"][0]
    assert (record["pending"], record["updatecount"]) == (0, 0)
    assert ap.content(mac) is None
    assert ap.stats["transfers_failed"] == 1
    assert ap.stats["transfers_ok"] == 0


def test_jsonupload__identical_content_is_not_queued_again(make_ap: MakeAP) -> None:
    fleet = make_fleet(20, seed=3)
    ap = make_ap(fleet, checkin_s=0.4, transfer_kbps=200)
    mac = _tag_of_type(fleet, 0x01)

    async def run() -> tuple[Msg, Msg]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            await session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE})
            await _wait_for(ws, _record_of(mac, lambda rec: rec["updatecount"] == 1))
            async with session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE}) as r:
                assert (r.status, await r.text()) == (200, "Ok, saved")
            await _wait_for(ws, lambda m: m.get("logMsg") == SAME_IMAGE)
            same = await _wait_for(ws, _record_of(mac))
            await session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": OTHER_TEMPLATE})
            changed = await _wait_for(ws, _record_of(mac, lambda rec: rec["pending"] == 1))
            return same, changed

    same, changed = asyncio.run(run())
    assert same["tags"][0]["pending"] == 0
    assert changed["tags"][0]["updatecount"] == 1
    assert ap.stats["uploads_ok"] == 3


def test_uploads__concurrent_pair_gets_one_200_and_one_409(make_ap: MakeAP) -> None:
    ap = make_ap(20, upload_s=0.3)
    first, second = ap.macs()[:2]

    async def run() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as session:

            async def post(mac: str) -> tuple[int, str]:
                async with session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE}) as resp:
                    return resp.status, await resp.text()

            pair = await asyncio.gather(post(first), post(second))
            return [*pair, await post(second)]

    *pair, after = asyncio.run(run())
    assert sorted(pair) == [(200, "Ok, saved"), (409, "come back later")]
    assert after == (200, "Ok, saved")  # the flash write is over: the next upload is taken
    stats = ap.stats
    assert (stats["uploads_ok"], stats["uploads_409"], stats["max_concurrent_uploads_seen"]) == (2, 1, 2)


def test_uploads__a_sequential_client_is_capped_near_one_per_upload_s(make_ap: MakeAP) -> None:
    ap = make_ap(50, upload_s=0.05)
    macs = ap.macs()

    async def run() -> tuple[int, float]:
        async with aiohttp.ClientSession() as session:
            began, sent = time.monotonic(), 0
            while time.monotonic() - began < 1.0:
                body = f'[{{"text":[5,5,"{sent}","fonts/bahnschrift20",1]}}]'
                async with session.post(f"{ap.url}/jsonupload", data={"mac": macs[sent % 50], "json": body}) as r:
                    assert r.status == 200
                sent += 1
            return sent, time.monotonic() - began

    sent, elapsed = asyncio.run(run())
    assert 12.0 <= sent / elapsed <= 20.0
    assert ap.stats["uploads_409"] == 0
    assert ap.stats["max_concurrent_uploads_seen"] == 1


def test_imgupload__only_a_baseline_jpeg_at_native_size_is_ever_displayed(make_ap: MakeAP) -> None:
    fleet = make_fleet(30, seed=3)
    ap = make_ap(fleet, checkin_s=0.4, transfer_kbps=200)
    good, wrong_size, progressive = (_tag_of_type(fleet, 0x01, skip=i) for i in range(3))
    uploads = {good: _jpeg(296, 128), wrong_size: _jpeg(128, 296), progressive: _jpeg(296, 128, progressive=True)}

    async def run() -> set[str]:
        outcomes: set[str] = set()
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            for mac, image in uploads.items():
                async with session.post(f"{ap.url}/imgupload", data=_form(mac, image, dither="0")) as r:
                    assert (r.status, await r.text()) == (200, "Ok, saved")
            while len(outcomes) < 3:
                msg = await _wait_for(ws, lambda m: "xfer" in str(m.get("logMsg", m.get("errMsg"))))
                outcomes.add(str(msg.get("logMsg", msg.get("errMsg"))).strip())
        return outcomes

    outcomes = asyncio.run(run())
    assert outcomes == {f"{good} reports xfer complete", f"< {wrong_size} xfer timeout",
                        f"< {progressive} xfer timeout"}
    assert ap.content(good) == uploads[good]
    assert ap.content(wrong_size) is None and ap.content(progressive) is None
    record = ap.tag(good)
    assert record["contentMode"] == 24
    assert re.fullmatch(rf'\{{"filename":"/temp/{good}_\d+\.jpg","timetolive":"0","dither":"0","delete":"1", '
                        r'"preload":"0", "preload_lut":"0", "preload_type":"0"\}', str(record["modecfgjson"]))


def test_http_errors__status_codes_and_bodies_match_the_firmware(make_ap: MakeAP) -> None:
    ap = make_ap(20)
    mac, unknown = ap.macs()[0], "0000AAAAAAAAAAAA"
    jpeg = _jpeg(296, 128)

    async def run() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as session:

            async def call(method: str, path: str, **kwargs: Any) -> tuple[int, str]:
                async with session.request(method, f"{ap.url}{path}", **kwargs) as resp:
                    return resp.status, await resp.text()

            file_first = aiohttp.FormData()
            file_first.add_field("image", jpeg, filename="image.jpg", content_type="image/jpeg")
            file_first.add_field("mac", mac)
            return [
                await call("POST", "/jsonupload", data={"mac": unknown, "json": TEMPLATE}),
                await call("POST", "/jsonupload", data={"mac": mac}),
                await call("POST", f"/jsonupload?mac={mac}&json=[]", data={}),  # POST body params only
                await call("POST", "/imgupload", data=_form(unknown, jpeg)),
                await call("POST", "/imgupload", data=file_first),  # mac must come before the file part
                await call("POST", "/tag_cmd", data={"mac": unknown, "cmd": "refresh"}),
                await call("POST", "/tag_cmd", data={"mac": mac}),
                await call("GET", f"/led_flash?mac={mac}&pattern=12"),
                await call("POST", "/set_time", data={"epoch": "1500000000"}),
                await call("POST", "/tag_cmd", data={"mac": mac, "cmd": "refresh"}),
            ]

    assert asyncio.run(run()) == [
        (400, "mac not found in tagDB"),
        (400, "Missing parameters"),
        (400, "Missing parameters"),
        (400, "mac not found"),
        (400, "parameters incomplete"),
        (400, "Error: mac not found"),
        (500, "param error"),
        (400, "Error: expects 12 hex bytes in pattern"),
        (400, "invalid epoch"),
        (200, "Ok, done"),
    ]
    assert ap.stats["uploads_400"] == 5


def test_get_ap_config__reports_apstate_and_maxsleep(make_ap: MakeAP) -> None:
    ap = make_ap(5, maxsleep_min=7)

    async def run() -> Msg:
        async with aiohttp.ClientSession() as session, session.get(f"{ap.url}/get_ap_config") as resp:
            config: Msg = json.loads(await resp.text())
            return config

    config = asyncio.run(run())
    assert (config["apstate"], config["maxsleep"], config["C6"]) == ("1", 7, "0")


# --- websocket status and failure knobs ---------------------------------------------------------------------------


def test_sys__low_battery_count_skips_the_sentinels(make_ap: MakeAP) -> None:
    fleet = make_fleet(100, seed=5, low_battery_share=0.05)
    ap = make_ap(fleet, checkin_s=0.3, sys_interval_s=0.2)
    healthy = next(t.mac for t in fleet if t.battery_mv >= 2600)

    async def run() -> tuple[Msg, Msg]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            before = await _wait_for(ws, lambda m: "sys" in m)
            ap.set_battery(healthy, 2300)
            after = await _wait_for(ws, lambda m: "sys" in m and m["sys"]["lowbattcount"] == 6)
            return before, after

    before, after = asyncio.run(run())
    assert before["sys"]["lowbattcount"] == 5
    assert {ap.tag(t.mac)["batteryMv"] for t in fleet if t.battery_mv in (0, 1337)} == {0, 1337}
    sys = after["sys"]
    assert (sys["recordcount"], sys["apstate"], sys["runstate"], sys["timeoutcount"]) == (100, 1, 2, 0)
    assert {"currtime", "heap", "dbsize", "uptime", "rssi", "wifistatus"} <= set(sys)


def test_silence__pending_stays_and_the_tag_times_out_once_the_clock_moves(make_ap: MakeAP) -> None:
    ap = make_ap(20, checkin_s=0.3, sys_interval_s=0.2, transfer_kbps=200)
    mac = ap.macs()[5]
    ap.silence(mac)
    seen = ap.tag(mac)["lastseen"]

    async def run() -> Msg:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            await session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE})
            await asyncio.sleep(0.8)  # a couple of check-in intervals for everybody else
            await session.post(f"{ap.url}/set_time", data={"epoch": str(int(time.time()) + 2000)})
            return await _wait_for(ws, lambda m: "sys" in m and m["sys"]["timeoutcount"] == 1)

    sys = asyncio.run(run())["sys"]
    assert sys["currtime"] >= time.time() + 1990
    record = ap.tag(mac)
    assert (record["pending"], record["lastseen"]) == (1, seen)


def test_press_button__next_checkin_reports_the_wakeup_reason_once(make_ap: MakeAP) -> None:
    ap = make_ap(10, checkin_s=0.4)
    mac = ap.macs()[2]

    async def run() -> tuple[Msg, Msg]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            ap.press_button(mac)
            # a pressed tag checks in at once rather than at its next interval
            pressed = await _wait_for(ws, _record_of(mac, lambda rec: rec["wakeupReason"] == 4), within_s=0.3)
            return pressed, await _wait_for(ws, _record_of(mac))

    pressed, next_one = asyncio.run(run())
    assert pressed["tags"][0]["lastseen"] >= int(time.time()) - 1
    assert next_one["tags"][0]["wakeupReason"] == 0  # reported once, then back to TIMED


def test_tag_cmd__led_flashes_count_when_the_tag_takes_them(make_ap: MakeAP) -> None:
    ap = make_ap(10, checkin_s=0.3)
    first, second = ap.macs()[:2]

    async def run() -> tuple[object, int]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            await session.post(f"{ap.url}/tag_cmd", data={"mac": first, "cmd": "ledflash"})
            await session.post(f"{ap.url}/tag_cmd", data={"mac": second, "cmd": "ledflash_stop"})
            await session.get(f"{ap.url}/led_flash", params={"mac": second, "pattern": "1" * 24})
            queued = (ap.tag(first)["pending"], ap.stats["led_flashes"])
            await _wait_for(ws, _record_of(first, lambda rec: rec["pending"] == 0))
            await _wait_for(ws, _record_of(second, lambda rec: rec["pending"] == 0))
            return queued

    assert asyncio.run(run()) == (1, 0)
    assert ap.stats["led_flashes"] == 2  # ledflash and the patterned flash, not ledflash_stop


def test_tag_cmd__deleted_tag_comes_back_as_a_new_record_at_its_next_checkin(make_ap: MakeAP) -> None:
    ap = make_ap(10, checkin_s=0.3)
    mac = ap.macs()[4]

    async def run() -> Msg:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            async with session.post(f"{ap.url}/tag_cmd", data={"mac": mac, "cmd": "del"}) as resp:
                assert resp.status == 200
            with pytest.raises(KeyError):
                ap.tag(mac)
            await _wait_for(ws, _record_of(mac))
            async with session.get(f"{ap.url}/get_db") as resp:
                return await resp.json()  # type: ignore[no-any-return]

    assert asyncio.run(run())["tags"][-1]["mac"] == mac  # re-added at the end of the DB


def test_reboot__rebooting_then_closed_then_refused_then_409_then_run(make_ap: MakeAP) -> None:
    fleet = make_fleet(20, seed=3)
    ap = make_ap(fleet, checkin_s=0.3, transfer_kbps=200)
    mac = _tag_of_type(fleet, 0x01)

    async def poll_config(session: aiohttp.ClientSession, until: str) -> str:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{ap.url}/get_ap_config") as resp:
                    state = json.loads(await resp.text())["apstate"]
                    if state == until:
                        return str(state)
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.02)
        raise AssertionError(f"apstate never became {until}")

    async def run() -> list[object]:
        seen: list[object] = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{ap.url}/ws") as ws:
                await session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": TEMPLATE})
                await _wait_for(ws, _record_of(mac, lambda rec: rec["updatecount"] == 1))
                rebooting = asyncio.create_task(asyncio.to_thread(ap.reboot, 0.5, coming_online_s=0.8))
                seen.append(await _wait_for(ws, lambda m: "errMsg" in m))
                seen.append((await ws.receive(timeout=2)).type)
                await rebooting
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"{ap.url}/sysinfo")
            seen.append(await poll_config(session, "6"))
            async with session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": OTHER_TEMPLATE}) as resp:
                seen.append((resp.status, await resp.text()))
            seen.append(await poll_config(session, "1"))
            async with session.post(f"{ap.url}/jsonupload", data={"mac": mac, "json": OTHER_TEMPLATE}) as resp:
                seen.append((resp.status, await resp.text()))
        return seen

    rebooting, close, coming, refused, online, accepted = asyncio.run(run())
    assert rebooting == {"errMsg": "REBOOTING"}
    assert close == aiohttp.WSMsgType.CLOSE
    assert (coming, refused) == ("6", (409, "come back later"))
    assert (online, accepted) == ("1", (200, "Ok, saved"))
    assert ap.tag(mac)["updatecount"] == 1  # the tag DB survived the reboot


def test_reboot__pending_template_is_redrawn_but_a_pending_image_is_lost(make_ap: MakeAP) -> None:
    fleet = make_fleet(20, seed=3)
    ap = make_ap(fleet, checkin_s=0.3)
    with_template, with_image = (_tag_of_type(fleet, 0x01, skip=i) for i in range(2))
    ap.silence(with_template)
    ap.silence(with_image)

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            await session.post(f"{ap.url}/jsonupload", data={"mac": with_template, "json": TEMPLATE})
            await session.post(f"{ap.url}/imgupload", data=_form(with_image, _jpeg(296, 128)))

    asyncio.run(run())
    assert (ap.tag(with_template)["pending"], ap.tag(with_image)["pending"]) == (1, 1)
    ap.reboot(0.2, coming_online_s=0.2)
    assert (ap.tag(with_template)["pending"], ap.tag(with_image)["pending"]) == (0, 0)  # queues lived in RAM
    deadline = time.monotonic() + 3.0
    while ap.tag(with_template)["pending"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ap.tag(with_template)["pending"] == 1  # back in RUN, the content manager redrew the template
    assert ap.tag(with_image)["pending"] == 0  # the uploaded JPEG was deleted after rendering: nothing to resend


def test_set_offline__connections_refused_until_back_on_the_same_port(make_ap: MakeAP) -> None:
    ap = make_ap(10)
    port = ap.port

    async def sysinfo() -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{ap.url}/sysinfo") as resp:
            return resp.status

    ap.set_offline(True)
    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(sysinfo())
    ap.set_offline(False)
    assert (asyncio.run(sysinfo()), ap.port) == (200, port)


def test_drop_websockets__connection_ends_without_rebooting_message(make_ap: MakeAP) -> None:
    ap = make_ap(10, checkin_s=0.2)

    async def run() -> list[aiohttp.WSMsgType]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ap.url}/ws") as ws:
            await _wait_for(ws, lambda m: "tags" in m)
            await asyncio.to_thread(ap.drop_websockets)
            types = []
            while not ws.closed:
                msg = await ws.receive(timeout=2)
                types.append(msg.type)
                assert "REBOOTING" not in str(msg.data)
            return types

    types = asyncio.run(run())
    assert aiohttp.WSMsgType.CLOSE not in types  # no close frame: the TCP connection just went
    assert types[-1] in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    deadline = time.monotonic() + 1.0
    while ap.stats["ws_clients"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ap.stats["ws_clients"] == 0


def test_main__serves_until_duration_then_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tags", "10", "--port", "0", "--checkin-s", "0.1", "--duration", "0.5"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"10 tags at http://127\.0\.0\.1:\d+ \(websocket ws://127\.0\.0\.1:\d+/ws\)", err)
    checkins = int(re.search(r"stopped: (\d+) check-ins", err).group(1))  # type: ignore[union-attr]
    assert 20 <= checkins <= 70
