"""Pure WiFi analytics over sighting rows: presence per window, visits of stable ids, zone dwell and heatmap.

No DB, no I/O, no clocks: rows in, typed results out, bucketed by event time. The rollup jobs own the state
objects between runs and write the results to ``agg_presence``, ``wifi_visits``/``agg_visits`` and ``agg_zones``.
"""

from edge.analytics.wifi_presence import (
    PresenceEstimator,
    PresenceState,
    PresenceWindow,
    SnifferSite,
    StaffFilter,
    calibrated_rssi,
    fit_persons_factor,
    site_map,
    window_start,
)
from edge.analytics.wifi_visits import (
    Visit,
    VisitState,
    VisitSummary,
    VisitTracker,
    capture_rate,
    dwell_bucket,
    dwell_bucket_labels,
    summarize_visits,
)
from edge.analytics.wifi_zones import HeatCell, ZoneDwell, ZoneTracker, ZoneWindow

__all__ = [
    "HeatCell",
    "PresenceEstimator",
    "PresenceState",
    "PresenceWindow",
    "SnifferSite",
    "StaffFilter",
    "Visit",
    "VisitState",
    "VisitSummary",
    "VisitTracker",
    "ZoneDwell",
    "ZoneTracker",
    "ZoneWindow",
    "calibrated_rssi",
    "capture_rate",
    "dwell_bucket",
    "dwell_bucket_labels",
    "fit_persons_factor",
    "site_map",
    "summarize_visits",
    "window_start",
]
