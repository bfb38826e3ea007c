"""Names shared by more than one module: health states, table names, defaults."""

from typing import Final, Literal

HealthState = Literal["ok", "degraded", "unavailable"]
HEALTH_OK: Final = "ok"
HEALTH_DEGRADED: Final = "degraded"
HEALTH_UNAVAILABLE: Final = "unavailable"

# Raw tables hold per-event rows; they are pruned by age and shed first when the disk is low.
TABLE_SCANS: Final = "scans"
TABLE_SIGHTINGS: Final = "sightings"
TABLE_WIFI_VISITS: Final = "wifi_visits"
RAW_TABLES: Final = (TABLE_SCANS, TABLE_SIGHTINGS, TABLE_WIFI_VISITS)

# Aggregate tables hold per-window rollups; they are kept longer and never shed for disk space.
TABLE_AGG_SCANS: Final = "agg_scans"
TABLE_AGG_PRESENCE: Final = "agg_presence"
TABLE_AGG_VISITS: Final = "agg_visits"
TABLE_AGG_ZONES: Final = "agg_zones"
TABLE_AGG_WIFI_CELLS: Final = "agg_wifi_cells"
TABLE_AGG_TRAFFIC: Final = "agg_traffic"
TABLE_AGG_OCCUPANCY: Final = "agg_occupancy"
TABLE_AGG_CAMERA_HEATMAP: Final = "agg_camera_heatmap"
TABLE_AGG_CAMERA_ZONES: Final = "agg_camera_zones"
TABLE_AGG_ESL: Final = "agg_esl"
# Shelf-label history: kept as long as aggregates (battery trends), pruned by age like them.
TABLE_ESL_LABEL_HISTORY: Final = "esl_label_history"
TABLE_ESL_UPDATES: Final = "esl_updates"
TABLE_ESL_REQUESTS: Final = "esl_requests"
# Fused store traffic (camera + WiFi + tills), per fused window and per store-local hour.
TABLE_AGG_FOOTFALL: Final = "agg_footfall"
TABLE_AGG_DWELL: Final = "agg_dwell"
TABLE_AGG_ZONE_DWELL: Final = "agg_zone_dwell"
TABLE_AGG_FLOOR_HEAT: Final = "agg_floor_heat"
TABLE_AGG_STORE_HOURS: Final = "agg_store_hours"
AGGREGATE_TABLES: Final = (
    TABLE_AGG_SCANS, TABLE_AGG_PRESENCE, TABLE_AGG_VISITS, TABLE_AGG_ZONES, TABLE_AGG_WIFI_CELLS, TABLE_AGG_TRAFFIC,
    TABLE_AGG_OCCUPANCY, TABLE_AGG_CAMERA_HEATMAP, TABLE_AGG_CAMERA_ZONES, TABLE_AGG_ESL, TABLE_ESL_LABEL_HISTORY,
    TABLE_ESL_UPDATES, TABLE_ESL_REQUESTS, TABLE_AGG_FOOTFALL, TABLE_AGG_DWELL, TABLE_AGG_ZONE_DWELL,
    TABLE_AGG_FLOOR_HEAT, TABLE_AGG_STORE_HOURS,
)

# Shelf-label state (current, never pruned): labels as the access point last reported them, label ↔ GTIN
# bindings, and the latest price item per GTIN.
TABLE_ESL_LABELS: Final = "esl_labels"
TABLE_ESL_BINDINGS: Final = "esl_bindings"
TABLE_ESL_ITEMS: Final = "esl_items"

TABLE_DEVICE_STATUS: Final = "device_status"
TABLE_DAEMON_STATE: Final = "daemon_state"
TABLE_JOB_RUNS: Final = "job_runs"
TABLE_ROLLUP_STATE: Final = "rollup_state"

# The transactional outbox of messages for HQ, what was shed from it, and commands already handled.
TABLE_OUTBOX: Final = "outbox"
TABLE_OUTBOX_SHED: Final = "outbox_shed"
TABLE_COMMANDS: Final = "commands"

# Outbox shed classes: "keep" is never shed (counts HQ reports on); "detail" goes first when bounds are hit.
SHED_KEEP: Final = "keep"
SHED_DETAIL: Final = "detail"

# Aggregate kinds HQ receives on …/agg/{kind}, and the outbox kind of command results.
AGG_SCANS: Final = "scans"
AGG_PRESENCE: Final = "presence"
AGG_VISITS: Final = "visits"
AGG_ZONES: Final = "zones"
AGG_HEALTH: Final = "health"
AGG_TRAFFIC: Final = "traffic"
AGG_HEATMAP: Final = "heatmap"
AGG_ESL: Final = "esl"
AGG_FOOTFALL: Final = "footfall"
AGG_DWELL: Final = "dwell"
AGG_ZONE_DWELL: Final = "zone_dwell"
AGG_FLOOR_HEATMAP: Final = "floor_heatmap"
CMD_RESULT: Final = "cmd_result"

DEFAULT_CONFIG_PATH: Final = "/etc/store-edge/store.toml"
DEFAULT_DB_PATH: Final = "/var/lib/store-edge/edge.db"
ENV_CONFIG: Final = "STORE_EDGE_CONFIG"
