"""The fusion maths on hand-built inputs with known answers (edge/analytics/fusion.py)."""

import numpy as np
import pytest

from edge.analytics import floormap, fusion
from edge.analytics.fusion import FactorSettings, HourCounts, OccupancySample, WifiVisits

H = 3600.0
SETTINGS = FactorSettings(prior=2.0, prior_weight=10.0, halflife_h=1.0, lookback_h=12, min_visitors=5)


def test_persons_factors__ratio_of_weighted_sums_with_a_prior_skipping_quiet_hours() -> None:
    hours = [HourCounts(0.0, 30, 10), HourCounts(H, 40, 10), HourCounts(2 * H, 5, 1)]
    first, second, quiet = fusion.persons_factors(hours, SETTINGS)
    assert first.factor == pytest.approx((30 + 20) / (10 + 10))  # 2.5
    assert first.raw == pytest.approx(3.0)
    assert second.factor == pytest.approx((0.5 * 30 + 40 + 20) / (0.5 * 10 + 10 + 10))  # 3.0
    # 1 visit inside is under the minimum: the hour does not count, the factor only ages.
    assert quiet.raw is None
    assert quiet.factor == pytest.approx((0.25 * 30 + 0.5 * 40 + 20) / (0.25 * 10 + 0.5 * 10 + 10))
    assert quiet.weight == pytest.approx(0.25 * 10 + 0.5 * 10)


def test_persons_factors__forget_hours_past_the_lookback_and_start_from_the_prior() -> None:
    settings = FactorSettings(prior=2.0, prior_weight=10.0, halflife_h=1.0, lookback_h=2, min_visitors=5)
    hours = [HourCounts(0.0, 300, 10), HourCounts(H, 40, 10), HourCounts(2 * H, 40, 10)]
    assert fusion.persons_factors(hours, settings)[2].factor == pytest.approx((0.5 * 40 + 40 + 20) / (5 + 10 + 10))
    no_camera = [HourCounts(0.0, None, 50), HourCounts(H, None, 50)]
    assert [f.factor for f in fusion.persons_factors(no_camera, settings)] == [2.0, 2.0]


def test_wifi_visits__split_by_span_into_passersby_then_by_estimated_stay_into_quick_visits_and_visitors() -> None:
    visits = [(10.0, 2), (59.9, 9), (60.0, 1), (299.0, 1), (300.0, 1), (1000.0, 5), (150.0, 2), (150.0, 4)]
    split = WifiVisits.split(visits, passerby_max_s=60.0, visitor_min_s=300.0)
    # 150 s between the first and last of 2 bursts is a 450 s stay; of 4 bursts, 250 s: quick.
    assert (split.visitors, split.quick, split.passersby, split.inside) == (3, 3, 2, 6)


def test_stay_estimate__n_bursts_over_a_stay_span_n_minus_1_over_n_plus_1_of_it() -> None:
    assert fusion.stay_estimate(100.0, 1) == 100.0
    assert fusion.stay_estimate(100.0, 2) == pytest.approx(300.0)
    assert fusion.stay_estimate(900.0, 19) == pytest.approx(1000.0)
    # The estimator's premise, simulated: bursts at uniform random times over a 600 s stay.
    rng = np.random.default_rng(3)
    stays = [fusion.stay_estimate(float(np.ptp(t)), 6) for t in rng.uniform(0.0, 600.0, size=(4000, 6))]
    assert np.mean(stays) == pytest.approx(600.0, rel=0.02)


def test_detection_share__zero_truncated_poisson_recovers_the_share_of_phones_heard() -> None:
    rng = np.random.default_rng(7)
    for mu in (0.3, 1.0, 2.5):
        bursts = rng.poisson(mu, size=200_000)
        heard = bursts[bursts > 0]
        assert fusion.detection_share(float(heard.mean())) == pytest.approx(heard.size / bursts.size, abs=0.01)
    assert fusion.detection_share(1.0) == fusion.MIN_DETECTION


def test_persons_factors__passerby_detection_pools_bursts_over_the_lookback() -> None:
    hours = [HourCounts(0.0, 30, 10, passers=20, passer_bursts=30), HourCounts(H, 40, 10, passers=2, passer_bursts=2),
             HourCounts(2 * H, 40, 10, passers=0, passer_bursts=0)]
    first, second, third = fusion.persons_factors(hours, SETTINGS)
    assert first.detection == pytest.approx(fusion.detection_share(1.5))
    assert second.detection == pytest.approx(fusion.detection_share((0.5 * 30 + 2) / (0.5 * 20 + 2)))
    assert third.detection == pytest.approx(fusion.detection_share((0.25 * 30 + 0.5 * 2) / (0.25 * 20 + 0.5 * 2)))
    few = fusion.persons_factors([HourCounts(0.0, 30, 10, passers=4, passer_bursts=8)], SETTINGS)
    assert few[0].detection is None, "under min_visitors passerby visits: no correction"


def test_persons_factors__visitor_share_pools_visitors_over_visits_inside() -> None:
    hours = [HourCounts(0.0, 30, 10, wifi_visitors=8), HourCounts(H, 40, 4, wifi_visitors=1)]
    first, second = fusion.persons_factors(hours, SETTINGS)
    assert first.visitor_share == pytest.approx(0.8)
    assert second.visitor_share == pytest.approx((0.5 * 8 + 1) / (0.5 * 10 + 4))
    assert fusion.persons_factors([HourCounts(0.0, 30, 4, wifi_visitors=4)], SETTINGS)[0].visitor_share is None


def test_persons__wifi_counts_times_factor_and_capture_from_the_entries() -> None:
    both = fusion.persons(20, WifiVisits(visitors=8, quick=2, passersby=30), factor=2.0)
    assert (both.came_in, both.visitors, both.quick, both.passersby) == (20.0, 16.0, 4.0, 60.0)
    assert both.capture_rate == pytest.approx(20 / 80)
    half_heard = fusion.persons(20, WifiVisits(visitors=8, quick=2, passersby=30), factor=2.0, detection=0.5)
    assert (half_heard.visitors, half_heard.passersby) == (16.0, 120.0)
    shared = fusion.persons(20, WifiVisits(visitors=8, quick=2, passersby=30), factor=2.0, visitor_share=0.75)
    assert (shared.came_in, shared.visitors, shared.quick) == (20.0, 15.0, 5.0), "the camera's entries, split"
    camera_only = fusion.persons(20, None, factor=2.0)
    assert (camera_only.came_in, camera_only.visitors, camera_only.passersby, camera_only.capture_rate) == \
        (20.0, 20.0, None, None)
    wifi_only = fusion.persons(None, WifiVisits(visitors=8, quick=2, passersby=30), factor=2.0)
    assert wifi_only.came_in == 20.0 and wifi_only.capture_rate == pytest.approx(0.25)
    assert fusion.capture_rate(0.0, 0.0) is None and fusion.ratio(3, 0) is None


def test_count_transactions__a_burst_is_one_and_belongs_to_the_window_of_its_first_scan() -> None:
    times = [0.0, 10.0, 20.0, 100.0, 105.0, 300.0]
    assert fusion.count_transactions(times, gap_s=60.0, start=0.0, end=400.0) == 3
    assert fusion.count_transactions(times, gap_s=60.0, start=15.0, end=400.0) == 2, "20 s continues the 0 s burst"
    assert fusion.count_transactions(times, gap_s=60.0, start=0.0, end=100.0) == 1
    assert fusion.count_transactions(times, gap_s=5.0, start=0.0, end=400.0) == 5


def test_store_occupancy__trapezoid_between_window_ends_summed_over_cameras() -> None:
    before = {"a": OccupancySample(-60.0, 0.0, 2, 2)}
    a = [OccupancySample(0.0, 60.0, 4, 5), OccupancySample(60.0, 120.0, 0, 4)]
    occ = fusion.store_occupancy({"a": a}, before, 0.0, 120.0)
    assert occ is not None
    assert occ.person_seconds == pytest.approx((2 + 4) / 2 * 60 + (4 + 0) / 2 * 60)
    assert (occ.end, occ.peak, occ.mean) == (0, 5, pytest.approx(300 / 120))
    b = [OccupancySample(0.0, 60.0, 1, 1, resets=1), OccupancySample(60.0, 120.0, 3, 3)]
    both = fusion.store_occupancy({"a": a, "b": b}, before, 0.0, 120.0)
    assert both is not None
    assert both.person_seconds == pytest.approx(300 + 1 * 60 + 2 * 60), "b has no window before: starts at its end"
    assert (both.end, both.peak) == (3, 7)
    assert fusion.store_occupancy({"a": a}, before, 500.0, 600.0) is None
    later = fusion.store_occupancy({"a": a}, before, 60.0, 120.0)
    assert later is not None and later.person_seconds == pytest.approx(120.0), "starts from the window before it"


def test_fuse_heat__camera_where_it_sees_and_wifi_shares_the_rest_of_the_total() -> None:
    grid = floormap.Grid.for_floor(4.0, 2.0, 1.0)
    coverage = floormap.rect_mask(grid, 0.0, 0.0, 2.0, 2.0)
    camera = grid.zeros()
    camera[0, 0] = 10.0
    wifi = grid.zeros()
    wifi[1, 0], wifi[0, 2], wifi[1, 3] = 1.0, 3.0, 1.0  # the first is in view: the camera wins there
    fused = floormap.fuse_heat(camera, coverage, wifi, total=30.0)
    expected = grid.zeros()
    expected[0, 0], expected[0, 2], expected[1, 3] = 10.0, 15.0, 5.0
    np.testing.assert_allclose(fused.values, expected)
    assert (fused.camera, fused.wifi, fused.unplaced) == (10.0, 20.0, 0.0)
    short = floormap.fuse_heat(camera, coverage, wifi, total=8.0)
    assert short.values.sum() == pytest.approx(10.0) and short.wifi == 0.0
    blind = floormap.fuse_heat(camera, coverage, grid.zeros(), total=30.0)
    assert blind.unplaced == pytest.approx(20.0) and blind.values.sum() == pytest.approx(10.0)


def test_zones__first_zone_holding_a_cell_centre_wins_and_shares_scale_to_the_total() -> None:
    grid = floormap.Grid.for_floor(4.0, 2.0, 1.0)
    masks = floormap.zone_masks(grid, [("left", [(0, 0), (2, 0), (2, 2), (0, 2)]),
                                     ("all", [(0, 0), (4, 0), (4, 2), (0, 2)])])
    assert masks["left"].sum() == 4 and masks["all"].sum() == 4
    values = np.arange(8, dtype=np.float64).reshape(2, 4)
    assert floormap.zone_seconds(values, masks) == {"left": 0 + 1 + 4 + 5, "all": 2 + 3 + 6 + 7}
    assert floormap.scaled_shares({"a": 1.0, "b": 3.0, "unzoned": 9.0}, ["a", "b"], 100.0) == {"a": 25.0, "b": 75.0}


def test_grid__bins_points_on_the_floor_and_round_trips_sparse_cells() -> None:
    grid = floormap.Grid.for_floor(2.0, 1.0, 0.5)
    assert (grid.nx, grid.ny) == (4, 2)
    values = floormap.bin_points(grid, [0.1, 1.9, 2.1, -0.1, 0.2], [0.1, 0.9, 0.5, 0.5, 0.2], [1.0, 2.0, 5.0, 5.0, 3.0])
    assert values[0, 0] == 4.0 and values[1, 3] == 2.0 and values.sum() == 6.0, "points off the floor are dropped"
    cells = floormap.sparse(values)
    assert cells == ((0, 4.0), (7, 2.0))
    np.testing.assert_array_equal(floormap.dense(grid, cells), values)


def test_heatmap_correlation__pearson_on_one_grid_and_block_sums() -> None:
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    assert floormap.heatmap_correlation(a, 2 * a + 1) == pytest.approx(1.0)
    assert floormap.heatmap_correlation(a, -a) == pytest.approx(-1.0)
    assert floormap.heatmap_correlation(a, np.ones_like(a)) == 0.0
    assert floormap.heatmap_correlation(a, a[:, ::-1], mask=[[True, True], [False, False]]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="shape"):
        floormap.heatmap_correlation(a, np.zeros((3, 2)))
    np.testing.assert_array_equal(floormap.block_sum(np.ones((3, 5)), 2), [[4, 4, 2], [2, 2, 1]])


def test_dwell_histogram__fixed_bins_lower_edge_inclusive() -> None:
    histogram = fusion.dwell_histogram([0.0, 299.0, 300.0, 7199.0, 7200.0, 9e4])
    assert list(histogram) == ["0-5", "5-10", "10-15", "15-20", "20-30", "30-45", "45-60", "60-90", "90-120", "120+"]
    assert (histogram["0-5"], histogram["5-10"], histogram["90-120"], histogram["120+"]) == (2, 1, 1, 2)
    assert sum(histogram.values()) == 6


def test_till_seconds__first_scan_to_pay_time_after_the_last_cut_at_the_next_customer_and_the_window() -> None:
    times = [100.0, 103.0, 110.0, 150.0, 152.0]  # customer 1 scans 100-110, customer 2 from 150
    assert floormap.till_seconds(times, gap_s=15.0, pay_s=30.0, start=0.0, end=1000.0) == (140 - 100) + (182 - 150)
    assert floormap.till_seconds(times, gap_s=15.0, pay_s=60.0, start=0.0, end=1000.0) == (150 - 100) + (212 - 150)
    assert floormap.till_seconds(times, gap_s=15.0, pay_s=30.0, start=120.0, end=160.0) == (140 - 120) + (160 - 150)
    assert floormap.till_seconds([], gap_s=15.0, pay_s=30.0, start=0.0, end=1000.0) == 0.0


def test_place_tills__moves_seconds_from_the_tills_zone_onto_its_cell_and_keeps_every_zone_total() -> None:
    grid = floormap.Grid(1.0, 4, 2)
    masks = {"checkout": floormap.rect_mask(grid, 0, 0, 2, 2), "aisle": floormap.rect_mask(grid, 2, 0, 4, 2)}
    coverage = floormap.rect_mask(grid, 0, 0, 1, 1)  # a camera sees cell (0, 0)
    values = np.array([[5.0, 10.0, 10.0, 10.0], [10.0, 10.0, 10.0, 10.0]])
    fused = floormap.FusedHeat(values, camera=5.0, wifi=75.0, unplaced=0.0)
    one, placed = floormap.place_tills(fused, coverage, masks, [((1, 1), 12.0)])
    assert placed == 12.0 and one.values[1, 1] == pytest.approx(10.0 * 18 / 30 + 12.0)
    assert one.values[0, 0] == 5.0, "the camera's cells are left alone"
    assert floormap.zone_seconds(one.values, masks) == pytest.approx(floormap.zone_seconds(values, masks))
    # Two tills wanting more than WiFi placed in their zone share what there is, in proportion.
    two, placed = floormap.place_tills(fused, coverage, masks, [((1, 1), 20.0), ((1, 0), 40.0)])
    assert placed == pytest.approx(30.0) and (two.values[1, 1], two.values[1, 0]) == pytest.approx((10.0, 20.0))
    assert two.values[0, 1] == pytest.approx(0.0) and two.values[0, 0] == 5.0
    assert two.wifi == pytest.approx(45.0) and two.values[0, 2:].tolist() == [10.0, 10.0]
