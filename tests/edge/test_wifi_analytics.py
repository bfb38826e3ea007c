"""Unit tests of the pure WiFi analytics on hand-built sightings: gate, staff, visits, dwell, zones, windows."""

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from edge.analytics import (
    PresenceEstimator,
    PresenceState,
    SnifferSite,
    StaffFilter,
    Visit,
    VisitState,
    VisitTracker,
    ZoneTracker,
    capture_rate,
    dwell_bucket,
    dwell_bucket_labels,
    fit_persons_factor,
    site_map,
    summarize_visits,
)
from edge.config.models import FloorPlan, OpeningHours, VisitRules, WifiAnalytics, Zone
from edge.events import Sighting

SITES = site_map([
    SnifferSite("a", zone="front", position=(2.0, 2.0), rssi_offset_db=2.0),
    SnifferSite("b", zone="back", position=(18.0, 12.0)),
])


def sighting(ts: float, device: str, rssi: int | None, sniffer: str = "b", *, randomized: bool = False,
             oui: str | None = "8cf5a3", fp: str | None = "00000000000000aa", seq: int = 0) -> Sighting:
    return Sighting(ts=ts, sniffer=sniffer, device=device, randomized=randomized,
                    oui=None if randomized else oui, rssi=rssi, channel=6, seq=seq, fp=fp, ssid_len=0)


# --- presence ---------------------------------------------------------------------------------------------------

def test_presence__gate_applies_after_the_sniffer_offset() -> None:
    settings = WifiAnalytics()  # gate -75
    estimator = PresenceEstimator(settings, SITES)
    estimator.feed([
        sighting(1.0, "d1", -76, "a"),  # -76 + 2 = -74: inside
        sighting(2.0, "d2", -76, "b"),  # no offset: outside
        sighting(3.0, "d3", -75, "b"),  # exactly on the gate: inside
    ])
    [window] = estimator.close(60.0)
    assert (window.frames, window.devices, window.stable_devices) == (3, 2, 2)
    assert window.probe_rate == pytest.approx(3 / 60)


def test_presence__a_device_heard_by_two_sniffers_counts_once_at_its_strongest() -> None:
    estimator = PresenceEstimator(WifiAnalytics(), SITES)
    estimator.feed([sighting(5.0, "d1", -90, "b"), sighting(5.0, "d1", -74, "a")])
    [window] = estimator.close(60.0)
    assert (window.frames, window.devices, window.stable_devices) == (2, 1, 1)


def test_presence__randomized_bursts_count_by_fingerprint_not_by_mac() -> None:
    estimator = PresenceEstimator(WifiAnalytics(), SITES)
    rows = [
        # one phone, one burst, three MACs: one cluster
        sighting(10.0, "r1", -60, randomized=True, fp="f1"),
        sighting(10.05, "r2", -60, randomized=True, fp="f1"),
        sighting(10.1, "r3", -61, randomized=True, fp="f1"),
        # its next burst 30 s later: a second cluster
        sighting(40.0, "r4", -60, randomized=True, fp="f1"),
        # another model at the same moment: its own cluster
        sighting(10.0, "r5", -65, randomized=True, fp="f2"),
        # outside the gate: not a cluster
        sighting(20.0, "r6", -90, randomized=True, fp="f3"),
    ]
    estimator.feed(rows)
    [window] = estimator.close(60.0)
    assert window.randomized_clusters == 3
    assert window.randomized_devices == 5
    assert window.devices == 5
    assert window.stable_devices == 0


def test_presence__persons_estimate_scales_with_the_factor() -> None:
    rows = [sighting(1.0, "u1", -60), sighting(2.0, "u2", -60), sighting(3.0, "r1", -60, randomized=True, fp="x")]
    one = PresenceEstimator(WifiAnalytics(persons_factor=1.0), SITES)
    two = PresenceEstimator(WifiAnalytics(persons_factor=2.0), SITES)
    one.feed(rows)
    two.feed(rows)
    [w1], [w2] = one.close(60.0), two.close(60.0)
    assert w1.persons_estimate > 2.0  # two stable phones plus some share of a phone for the burst
    assert w2.persons_estimate == pytest.approx(2 * w1.persons_estimate)


def test_presence__staff_filter_drops_ids_present_longer_than_the_limit() -> None:
    settings = WifiAnalytics(staff_max_hours=1.0)
    estimator = PresenceEstimator(settings, SITES)
    # a handheld probing every minute for two hours, and a customer's phone in the last window
    rows = [sighting(60.0 * i + 1, "staff", -60) for i in range(120)] + [sighting(7170.0, "shopper", -60)]
    estimator.feed(rows)
    windows = estimator.close(7200.0)
    assert len(windows) == 120
    assert windows[10].stable_devices == 1 and windows[10].staff_devices == 0
    assert windows[-1].stable_devices == 1 and windows[-1].staff_devices == 1  # the shopper only


def test_presence__ignored_ouis_are_not_devices() -> None:
    estimator = PresenceEstimator(WifiAnalytics(ignore_ouis=["00:15:70"]), SITES)
    estimator.feed([sighting(1.0, "scanner", -50, oui="001570"), sighting(2.0, "phone", -50)])
    [window] = estimator.close(60.0)
    assert (window.devices, window.stable_devices, window.ignored_devices) == (1, 1, 1)


def test_staff_filter__counts_slots_not_sightings() -> None:
    staff = StaffFilter(max_hours=0.5)
    for i in range(1000):
        staff.observe("busy", 10.0 + i * 0.1)  # 100 s of chatter: one slot
    assert not staff.is_staff("busy")
    for i in range(7):
        staff.observe("long", i * 300.0)  # 7 slots of 5 min = 35 min > 30 min
    assert staff.is_staff("long")


def test_presence__empty_windows_between_data_are_emitted() -> None:
    estimator = PresenceEstimator(WifiAnalytics(), SITES)
    estimator.feed([sighting(10.0, "d", -60), sighting(250.0, "d", -60)])
    windows = estimator.close(300.0)
    assert [w.window_start for w in windows] == [0.0, 60.0, 120.0, 180.0, 240.0]
    assert [w.frames for w in windows] == [1, 0, 0, 0, 1]


def test_presence__late_rows_are_counted_and_ignored() -> None:
    estimator = PresenceEstimator(WifiAnalytics(), SITES)
    estimator.feed([sighting(10.0, "d", -60)])
    estimator.close(60.0)
    estimator.feed([sighting(30.0, "d", -60)])
    assert estimator.late == 1


def test_fit_persons_factor__recovers_the_ratio_and_shrinks_towards_the_prior() -> None:
    estimates = [10.0, 20.0, 30.0]
    entries = [15.0, 30.0, 45.0]
    assert fit_persons_factor(estimates, entries) == pytest.approx(1.5)
    shrunk = fit_persons_factor(estimates, entries, prior=1.0, prior_weight=3.0)
    assert shrunk == pytest.approx(1.25)
    assert fit_persons_factor([0.0], [5.0], prior=1.3) == 1.3
    with pytest.raises(ValueError, match="same length"):
        fit_persons_factor([1.0], [])


# --- visits -----------------------------------------------------------------------------------------------------

RULES = WifiAnalytics(visits=VisitRules(enter_dbm=-80, stay_dbm=-85, gap_s=120.0, visitor_min_s=300.0))
NO_OFFSETS = site_map([SnifferSite("b")])


def _visits(rows: list[Sighting], now: float = 1e6, settings: WifiAnalytics = RULES) -> list[Visit]:
    tracker = VisitTracker(settings, NO_OFFSETS)
    return tracker.feed(rows) + tracker.flush(now)


def test_visits__start_needs_the_enter_threshold() -> None:
    assert _visits([sighting(0.0, "d", -81), sighting(60.0, "d", -81)]) == []
    [visit] = _visits([sighting(0.0, "d", -81), sighting(60.0, "d", -80), sighting(120.0, "d", -82)])
    assert (visit.start, visit.end) == (60.0, 120.0)


def test_visits__stay_threshold_extends_weaker_does_not() -> None:
    [visit] = _visits([sighting(0.0, "d", -70), sighting(100.0, "d", -85), sighting(200.0, "d", -86)])
    assert visit.end == 100.0
    assert visit.max_rssi == -70


def test_visits__a_gap_over_gap_s_ends_the_visit() -> None:
    [visit] = _visits([sighting(0.0, "d", -70), sighting(120.0, "d", -70)])  # exactly the gap: one visit
    assert (visit.start, visit.end) == (0.0, 120.0)
    first, second = _visits([sighting(0.0, "d", -70), sighting(120.5, "d", -70)])
    assert (first.start, first.end, second.start) == (0.0, 0.0, 120.5)
    assert first.ts == 120.0  # known to be over once the gap has passed


def test_visits__count_probe_bursts_not_frames_and_keep_them_across_a_saved_state() -> None:
    # A burst's frames (and the same frame at two sniffers) come within BURST_S; weaker than stay_dbm is no burst.
    rows = [sighting(0.0, "d", -70), sighting(0.4, "d", -72), sighting(30.0, "d", -75), sighting(31.5, "d", -75),
            sighting(60.0, "d", -90), sighting(90.0, "d", -80)]
    tracker = VisitTracker(RULES, NO_OFFSETS)
    assert tracker.feed(rows[:3]) == []
    restored = VisitTracker(RULES, NO_OFFSETS, state=VisitState.from_json(tracker.state.to_json(), RULES))
    [visit] = restored.feed(rows[3:]) + restored.flush(1e6)
    assert (visit.start, visit.end, visit.bursts) == (0.0, 90.0, 3)
    assert visit.row()[-1] == 3


def test_visits__visitor_from_visitor_min_s_else_passerby() -> None:
    def visit(dwell: float) -> Visit:
        rows = [sighting(t, "d", -70) for t in [*range(0, int(dwell), 60), dwell]]
        [only] = _visits(rows)
        return only

    assert visit(300.0).visitor
    assert visit(300.0).dwell_s == 300.0
    assert not visit(299.0).visitor


def test_visits__flush_closes_only_visits_idle_past_the_gap() -> None:
    tracker = VisitTracker(RULES, NO_OFFSETS)
    assert tracker.feed([sighting(0.0, "old", -70), sighting(100.0, "new", -70)]) == []
    [closed] = tracker.flush(200.0)
    assert closed.device == "old"
    assert [v.device for v in tracker.flush(221.0)] == ["new"]


def test_visits__offset_is_applied_before_the_thresholds() -> None:
    tracker = VisitTracker(RULES, SITES)  # sniffer a adds 2 dB
    tracker.feed([sighting(0.0, "d", -82, "a")])
    [visit] = tracker.flush(1000.0)
    assert visit.max_rssi == -80


def test_visits__staff_make_no_visits() -> None:
    settings = WifiAnalytics(staff_max_hours=1.0)
    rows = [sighting(60.0 * i, "staff", -60) for i in range(90)]  # 90 min, never a gap
    assert _visits(rows, settings=settings) == []
    ignored = WifiAnalytics(ignore_ouis=["8c:f5:a3"])
    assert _visits([sighting(0.0, "d", -60), sighting(400.0, "d", -60)], settings=ignored) == []


def test_visits__randomized_ids_need_to_be_long_lived() -> None:
    burst = [sighting(0.0, "r-burst", -60, randomized=True)]
    assert _visits(burst) == []
    stable = [sighting(60.0 * i, "r-assoc", -60, randomized=True) for i in range(12)]  # 11 min
    [visit] = _visits(stable)
    assert visit.randomized and visit.visitor


def test_visits__repeats_count_within_one_salt_period_only() -> None:
    tracker = VisitTracker(RULES, NO_OFFSETS)
    rows = [sighting(t, "d", -60) for t in (0.0, 100.0, 200.0, 300.0)]
    tracker.feed(rows)
    [first] = tracker.flush(1000.0)
    tracker.feed([sighting(1000.0 + t, "d", -60) for t in (0.0, 100.0, 200.0, 300.0)])
    [second] = tracker.flush(2000.0)
    assert (first.repeat, second.repeat) == (False, True)
    tracker.start_period(3000.0)
    tracker.feed([sighting(3000.0 + t, "d", -60) for t in (0.0, 100.0, 200.0, 300.0)])
    [third] = tracker.flush(4000.0)
    assert not third.repeat


def test_visits__state_round_trips_through_json() -> None:
    tracker = VisitTracker(RULES, NO_OFFSETS)
    tracker.feed([sighting(0.0, "d", -60), sighting(200.0, "d", -60)])
    restored = VisitTracker(RULES, NO_OFFSETS, state=VisitState.from_json(tracker.state.to_json(), RULES))
    for t in (tracker, restored):
        t.feed([sighting(400.0, "d", -60)])
    assert tracker.flush(1000.0) == restored.flush(1000.0)


def test_dwell_buckets__edges_in_minutes() -> None:
    edges = [5, 20, 60, 360]
    assert dwell_bucket_labels(edges) == ["5-20", "20-60", "60-360", "360+"]
    assert dwell_bucket(299.0, edges) is None
    assert dwell_bucket(300.0, edges) == "5-20"
    assert dwell_bucket(1199.0, edges) == "5-20"
    assert dwell_bucket(1200.0, edges) == "20-60"
    assert dwell_bucket(3600.0, edges) == "60-360"
    assert dwell_bucket(6 * 3600.0, edges) == "360+"


def _v(ts: float, dwell: float, visitor: bool, repeat: bool = False) -> Visit:
    return Visit("d", ts - 120 - dwell, ts - 120, ts, dwell, -60, visitor, False, repeat)


def test_summarize_visits__capture_rate_buckets_and_repeats_of_the_window() -> None:
    visits = [_v(10, 400, True), _v(20, 1500, True, repeat=True), _v(30, 60, False), _v(70, 400, True)]
    summary = summarize_visits(visits, 0.0, 60.0, [5, 20, 60, 360])
    assert (summary.visitors, summary.passersby, summary.repeat_visitors) == (2, 1, 1)
    assert summary.capture_rate == pytest.approx(2 / 3)
    assert summary.dwell_buckets == {"5-20": 1, "20-60": 1, "60-360": 0, "360+": 0}
    assert summarize_visits([], 0.0, 60.0, [5, 20]).capture_rate is None
    assert capture_rate(visits) == pytest.approx(3 / 4)


# --- zones ------------------------------------------------------------------------------------------------------

ZONE_SITES = site_map([SnifferSite("a", zone="front"), SnifferSite("b", zone="back")])


def _zone_seconds(rows: list[Sighting], until: float, settings: WifiAnalytics | None = None) -> dict[str, float]:
    tracker = ZoneTracker(settings or WifiAnalytics(zone_hysteresis_db=4.0, window_s=600), ZONE_SITES)
    tracker.feed(rows)
    totals: dict[str, float] = {}
    for window in tracker.close(until):
        for zone in window.zones:
            totals[zone.zone] = totals.get(zone.zone, 0.0) + zone.device_seconds
    return totals


def _two_sniffers(t0: float, t1: float, a: int, b: int) -> list[Sighting]:
    rows = []
    for t in range(int(t0), int(t1), 5):
        rows += [sighting(float(t), "d", a, "a"), sighting(float(t) + 0.01, "d", b, "b")]
    return rows


def test_zones__a_2db_wobble_does_not_switch_zones() -> None:
    rows = _two_sniffers(0, 100, -60, -65)  # clearly at a
    for t in range(100, 300, 5):  # then b wobbles 2 dB above a
        rows += [sighting(float(t), "d", -60, "a"), sighting(float(t) + 0.01, "d", -58, "b")]
    seconds = _zone_seconds(rows, 600.0)
    assert seconds.get("back", 0.0) == 0.0
    assert seconds["front"] == pytest.approx(295.01 + 60.0)


def test_zones__a_10db_change_switches_zones() -> None:
    rows = _two_sniffers(0, 100, -60, -65) + _two_sniffers(100, 300, -65, -55)
    seconds = _zone_seconds(rows, 600.0)
    # the switch waits for the median of the 20 s window to move: about 10 s after the change
    assert 180.0 < seconds["back"] < 260.0
    assert seconds["front"] + seconds["back"] == pytest.approx(295.01 + 60.0)


def test_zones__intervals_are_capped_and_split_at_window_edges() -> None:
    settings = WifiAnalytics(window_s=60)
    tracker = ZoneTracker(settings, ZONE_SITES, cap_s=60.0)
    tracker.feed([sighting(50.0, "d", -60, "a"), sighting(80.0, "d", -60, "a"), sighting(400.0, "d", -60, "a")])
    windows = {w.window_start: w for w in tracker.close(600.0)}
    assert windows[0.0].zones[0].device_seconds == pytest.approx(10.0)
    assert windows[60.0].zones[0].device_seconds == pytest.approx(20.0 + 40.0)  # 80 → 140 capped at 60 s
    assert windows[120.0].zones[0].device_seconds == pytest.approx(20.0)
    assert windows[400.0 // 60 * 60].zones[0].device_seconds == pytest.approx(20.0)  # 400 → 420
    assert windows[420.0].zones[0].device_seconds == pytest.approx(40.0)
    assert windows[0.0].zones[0].devices == 1


def test_zones__a_universal_id_heard_while_the_store_is_closed_is_staff_and_credited_nowhere() -> None:
    opens_at = 300.0
    tracker = ZoneTracker(WifiAnalytics(window_s=600), ZONE_SITES, store_open=lambda ts: ts >= opens_at)
    rows = [sighting(t, "printer", -60, "a") for t in range(0, 1200, 20)]  # there before opening, all day
    rows += [sighting(t, "shopper", -60, "a") for t in range(400, 1000, 20)]  # universal, arrives after opening
    rows += [sighting(t, f"burst-{t}", -60, "a", randomized=True) for t in range(100, 200, 20)]  # closed, random
    tracker.feed(sorted(rows, key=lambda r: r.ts))
    saved = tracker.to_json()
    windows = tracker.close(1800.0)
    assert tracker.heard_closed == {"printer"}
    # Window 0: the shopper from 400 s and five random bursts (60 s each); window 1: the shopper until 980 + 60 s.
    assert [sum(z.devices for z in w.zones) for w in windows[:2]] == [6, 1]
    assert sum(z.device_seconds for w in windows for z in w.zones) == pytest.approx((980 - 400 + 60) + 5 * 60)
    restored = ZoneTracker(WifiAnalytics(window_s=600), ZONE_SITES)
    restored.load_json(saved)
    assert restored.heard_closed == {"printer"}


def test_opening_hours__open_within_the_local_weekday_range() -> None:
    hours = OpeningHours(mon="08:00-20:00", tue="closed")
    shanghai = ZoneInfo("Asia/Shanghai")
    monday_8 = datetime(2026, 11, 30, 8, 0, tzinfo=shanghai).timestamp()
    assert hours.is_open(monday_8, shanghai) and not hours.is_open(monday_8 - 1, shanghai)
    assert hours.is_open(monday_8 + 12 * 3600 - 1, shanghai) and not hours.is_open(monday_8 + 12 * 3600, shanghai)
    assert not hours.is_open(monday_8 + 24 * 3600 + 3 * 3600, shanghai), "Tuesday is closed"


def test_zones__sightings_below_the_gate_are_outside() -> None:
    assert _zone_seconds([sighting(0.0, "d", -90, "a"), sighting(10.0, "d", -90, "a")], 600.0) == {}


def test_zones__phones_are_placed_by_position_and_fill_heat_cells() -> None:
    floor = FloorPlan(width_m=20.0, depth_m=10.0, zones=[
        Zone(name="left", polygon=[(0, 0), (10, 0), (10, 10), (0, 10)]),
        Zone(name="right", polygon=[(10, 0), (20, 0), (20, 10), (10, 10)]),
    ])
    sites = site_map([SnifferSite("l", position=(2.0, 5.0)), SnifferSite("r", position=(18.0, 5.0))], floor)
    assert (sites["l"].zone, sites["r"].zone) == ("left", "right")  # zones filled in from the positions
    rows = []
    for t in range(0, 300, 10):
        rows += [sighting(float(t), "d", -60, "r"), sighting(float(t), "d", -68, "l")]  # ~5 m from the right one
    tracker = ZoneTracker(WifiAnalytics(window_s=600), sites, floor=floor)
    tracker.feed(rows)
    [window] = tracker.close(600.0)
    [zone] = window.zones
    assert zone.zone == "right" and zone.devices == 1
    # 290 s + the 60 s tail, less the share two sniffers cannot tell from a place beyond the walls
    assert 100.0 < zone.device_seconds <= 350.0
    assert window.cells and all(c.x > 10.0 for c in window.cells)
    assert sum(c.device_seconds for c in window.cells) == pytest.approx(zone.device_seconds, rel=1e-3)


def test_zones__a_sniffer_zone_is_used_when_asked_or_without_positions() -> None:
    whole = Zone(name="all", polygon=[(0, 0), (20, 0), (20, 10), (0, 10)])
    floor = FloorPlan(width_m=20.0, depth_m=10.0, zones=[whole])
    sites = site_map([SnifferSite("l", zone="till", position=(2.0, 5.0))])
    tracker = ZoneTracker(WifiAnalytics(window_s=600), sites, floor=floor, zone_by_position=False)
    tracker.feed([sighting(0.0, "d", -50, "l"), sighting(30.0, "d", -50, "l")])
    [window] = tracker.close(600.0)
    assert [z.zone for z in window.zones] == ["till"]


# --- event time -------------------------------------------------------------------------------------------------

def _stream(seed: int) -> list[Sighting]:
    rng = random.Random(seed)
    rows = []
    t = 1_700_000_000.0
    for _ in range(3000):
        t += rng.expovariate(1 / 1.5)
        device = f"u{rng.randrange(12)}" if rng.random() < 0.4 else f"r{rng.randrange(10_000)}"
        rows.append(sighting(t, device, rng.randint(-95, -45), rng.choice("ab"),
                             randomized=device.startswith("r"), fp=f"{rng.randrange(4):016x}"))
    return rows


@pytest.mark.parametrize("chunk", [1, 7, 333])
def test_windows__results_do_not_depend_on_how_rows_are_chunked(chunk: int) -> None:
    rows = _stream(4)
    settings = WifiAnalytics(window_s=60)
    end = rows[-1].ts + 1

    def run(size: int) -> tuple[list[object], list[object], list[object]]:
        presence = PresenceEstimator(settings, SITES)
        zones = ZoneTracker(settings, SITES)
        visits = VisitTracker(settings, SITES)
        out_p: list[object] = []
        out_z: list[object] = []
        out_v: list[object] = []
        for i in range(0, len(rows), size):
            part = rows[i:i + size]
            presence.feed(part)
            zones.feed(part)
            out_v += visits.feed(part)
            # a rollup may run at any moment; it closes what is complete up to the last row fed
            out_p += presence.close(part[-1].ts)
            out_z += zones.close(part[-1].ts)
            out_v += visits.flush(part[-1].ts)
        out_p += presence.close(end)
        out_z += zones.close(end)
        out_v += visits.flush(end + 1e6)
        return out_p, out_z, sorted(out_v, key=lambda v: (v.ts, v.device))  # type: ignore[attr-defined]

    assert run(chunk) == run(len(rows))


def test_presence__state_round_trips_through_json() -> None:
    rows = _stream(9)
    settings = WifiAnalytics()
    half = len(rows) // 2
    cut = rows[half].ts // 60 * 60
    first, second = [r for r in rows if r.ts < cut], [r for r in rows if r.ts >= cut]
    straight = PresenceEstimator(settings, SITES)
    straight.feed(rows)
    expected = straight.close(rows[-1].ts)
    before = PresenceEstimator(settings, SITES)
    before.feed(first)
    got = before.close(cut)
    after = PresenceEstimator(settings, SITES, state=PresenceState.from_json(before.state.to_json(), settings))
    after.feed(second)
    got += after.close(rows[-1].ts)
    assert got == expected


def test_zones__state_round_trips_through_json() -> None:
    rows = _stream(11)
    settings = WifiAnalytics()
    cut = rows[len(rows) // 2].ts
    straight = ZoneTracker(settings, SITES)
    straight.feed(rows)
    expected = straight.close(rows[-1].ts)
    before = ZoneTracker(settings, SITES)
    before.feed([r for r in rows if r.ts < cut])
    got = before.close(cut)
    after = ZoneTracker(settings, SITES)
    after.load_json(before.to_json())
    after.feed([r for r in rows if r.ts >= cut])
    got += after.close(rows[-1].ts)
    assert got == expected
