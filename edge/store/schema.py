"""The database schema as named, transactional migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one. Table names come from ``edge.const``.
"""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge import const

migrations = Migrations("store-edge")


@migrations(name="0001_core")
def _core(db: Database) -> None:
    statements = [
        f"""CREATE TABLE {const.TABLE_SCANS} (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            device TEXT NOT NULL,
            symbology TEXT,
            text TEXT NOT NULL,
            kind TEXT NOT NULL,
            gtin TEXT,
            valid INTEGER NOT NULL,
            error TEXT,
            price_minor INTEGER,
            weight_g INTEGER,
            ai_json TEXT
        )""",
        f"CREATE INDEX idx_scans_ts ON {const.TABLE_SCANS} (ts)",
        f"""CREATE TABLE {const.TABLE_AGG_SCANS} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            device TEXT NOT NULL,
            scans INTEGER NOT NULL,
            valid INTEGER NOT NULL,
            invalid INTEGER NOT NULL,
            distinct_gtins INTEGER NOT NULL,
            PRIMARY KEY (window_start, device)
        )""",
        f"""CREATE TABLE {const.TABLE_DEVICE_STATUS} (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            since REAL NOT NULL,
            last_event_ts REAL,
            events INTEGER NOT NULL DEFAULT 0,
            reconnects INTEGER NOT NULL DEFAULT 0,
            counters_json TEXT NOT NULL DEFAULT '{{}}',
            details_json TEXT NOT NULL DEFAULT '{{}}',
            updated_at REAL NOT NULL
        )""",
        f"""CREATE TABLE {const.TABLE_DAEMON_STATE} (
            key TEXT PRIMARY KEY,
            value_json TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
        f"""CREATE TABLE {const.TABLE_JOB_RUNS} (
            name TEXT PRIMARY KEY,
            last_run REAL NOT NULL,
            duration_s REAL NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            runs INTEGER NOT NULL,
            failures INTEGER NOT NULL
        )""",
        f"""CREATE TABLE {const.TABLE_ROLLUP_STATE} (
            kind TEXT PRIMARY KEY,
            watermark REAL NOT NULL
        )""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations(name="0002_outbox")
def _outbox(db: Database) -> None:
    statements = [
        # AUTOINCREMENT: an id is never reused, even after rows are deleted, so it serves as the per-store
        # message seq that HQ de-duplicates on and that survives restarts.
        f"""CREATE TABLE {const.TABLE_OUTBOX} (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            shed_class TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            window_start REAL,
            window_end REAL,
            body TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at REAL NOT NULL,
            sent_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT
        )""",
        f"CREATE INDEX idx_outbox_unsent ON {const.TABLE_OUTBOX} (id) WHERE sent_at IS NULL",
        f"""CREATE TABLE {const.TABLE_OUTBOX_SHED} (
            kind TEXT PRIMARY KEY,
            rows INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            last_at REAL NOT NULL
        )""",
        f"""CREATE TABLE {const.TABLE_COMMANDS} (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            received_at REAL NOT NULL,
            status TEXT NOT NULL,
            reason TEXT
        )""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations(name="0003_wifi")
def _wifi(db: Database) -> None:
    statements = [
        f"""CREATE TABLE {const.TABLE_SIGHTINGS} (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            sniffer TEXT NOT NULL,
            device TEXT NOT NULL,
            randomized INTEGER NOT NULL,
            oui TEXT,
            rssi INTEGER,
            channel INTEGER,
            seq INTEGER NOT NULL,
            fp TEXT,
            ssid_len INTEGER NOT NULL
        )""",
        f"CREATE INDEX idx_sightings_ts ON {const.TABLE_SIGHTINGS} (ts)",
        # Visits of stable ids, closed by the analytics (hashed ids only; pruned with the raw tables).
        f"""CREATE TABLE {const.TABLE_WIFI_VISITS} (
            id INTEGER PRIMARY KEY,
            device TEXT NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            ts REAL NOT NULL,
            dwell_s REAL NOT NULL,
            max_rssi INTEGER,
            visitor INTEGER NOT NULL,
            randomized INTEGER NOT NULL
        )""",
        f"CREATE INDEX idx_wifi_visits_ts ON {const.TABLE_WIFI_VISITS} (ts)",
        f"""CREATE TABLE {const.TABLE_AGG_PRESENCE} (
            window_start REAL PRIMARY KEY,
            window_end REAL NOT NULL,
            frames INTEGER NOT NULL,
            devices INTEGER NOT NULL,
            stable_devices INTEGER NOT NULL,
            randomized_clusters INTEGER NOT NULL,
            probe_rate REAL NOT NULL,
            persons_estimate REAL NOT NULL,
            detail_json TEXT NOT NULL DEFAULT '{{}}'
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_VISITS} (
            window_start REAL PRIMARY KEY,
            window_end REAL NOT NULL,
            visitors INTEGER NOT NULL,
            passersby INTEGER NOT NULL,
            capture_rate REAL,
            repeat_visitors INTEGER NOT NULL,
            dwell_buckets_json TEXT NOT NULL
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_ZONES} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            zone TEXT NOT NULL,
            device_seconds REAL NOT NULL,
            devices INTEGER NOT NULL,
            PRIMARY KEY (window_start, zone)
        )""",
        # The coarse WiFi heatmap: device-seconds per floor cell (when sniffer positions allow placing devices).
        f"""CREATE TABLE {const.TABLE_AGG_WIFI_CELLS} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            ix INTEGER NOT NULL,
            iy INTEGER NOT NULL,
            x REAL NOT NULL,
            y REAL NOT NULL,
            device_seconds REAL NOT NULL,
            PRIMARY KEY (window_start, ix, iy)
        )""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations(name="0004_camera")
def _camera(db: Database) -> None:
    # Camera drivers write whole windows; ON CONFLICT REPLACE makes a re-emitted window (a replayed file) overwrite
    # its row rather than fail the writer's batch.
    statements = [
        f"""CREATE TABLE {const.TABLE_AGG_TRAFFIC} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            camera TEXT NOT NULL,
            line TEXT NOT NULL,
            in_count INTEGER NOT NULL,
            out_count INTEGER NOT NULL,
            PRIMARY KEY (window_start, camera, line) ON CONFLICT REPLACE
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_OCCUPANCY} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            camera TEXT NOT NULL,
            entries INTEGER NOT NULL,
            exits INTEGER NOT NULL,
            occupancy INTEGER NOT NULL,
            occupancy_max INTEGER NOT NULL,
            visible_mean REAL NOT NULL,
            visible_max INTEGER NOT NULL,
            frames INTEGER NOT NULL,
            occupancy_resets INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (window_start, camera) ON CONFLICT REPLACE
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_CAMERA_HEATMAP} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            camera TEXT NOT NULL,
            origin_x REAL NOT NULL,
            origin_y REAL NOT NULL,
            cell_m REAL NOT NULL,
            nx INTEGER NOT NULL,
            ny INTEGER NOT NULL,
            cells_json TEXT NOT NULL,
            person_seconds REAL NOT NULL,
            PRIMARY KEY (window_start, camera) ON CONFLICT REPLACE
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_CAMERA_ZONES} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            camera TEXT NOT NULL,
            zone TEXT NOT NULL,
            person_seconds REAL NOT NULL,
            PRIMARY KEY (window_start, camera, zone) ON CONFLICT REPLACE
        )""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations(name="0005_esl")
def _esl(db: Database) -> None:
    statements = [
        # One row per label as the access point last reported it. A label the AP stops listing is never deleted
        # here: a complete /get_db without it sets ``missing_since`` (a failed or partial fetch sets nothing).
        f"""CREATE TABLE {const.TABLE_ESL_LABELS} (
            label TEXT PRIMARY KEY,
            ap TEXT NOT NULL,
            hw_type INTEGER NOT NULL,
            battery_mv INTEGER,
            rssi INTEGER,
            lqi INTEGER,
            temperature INTEGER,
            lastseen REAL,
            nextcheckin REAL,
            pending INTEGER NOT NULL DEFAULT 0,
            wakeup_reason INTEGER,
            capabilities INTEGER,
            updatecount INTEGER,
            updatelast REAL,
            hash TEXT,
            version INTEGER,
            channel INTEGER,
            first_seen REAL NOT NULL,
            updated_at REAL NOT NULL,
            missing_since REAL
        )""",
        # Label history: a row when something a technician cares about changed (battery, pending, update count,
        # wake-up reason, reappearance), and at most hourly otherwise, not one per 40 s check-in.
        f"""CREATE TABLE {const.TABLE_ESL_LABEL_HISTORY} (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            label TEXT NOT NULL,
            battery_mv INTEGER,
            rssi INTEGER,
            lqi INTEGER,
            lastseen REAL,
            nextcheckin REAL,
            pending INTEGER,
            wakeup_reason INTEGER,
            updatecount INTEGER
        )""",
        f"CREATE INDEX idx_esl_history_label ON {const.TABLE_ESL_LABEL_HISTORY} (label, ts)",
        f"CREATE INDEX idx_esl_history_ts ON {const.TABLE_ESL_LABEL_HISTORY} (ts)",
        f"""CREATE TABLE {const.TABLE_ESL_BINDINGS} (
            label TEXT PRIMARY KEY,
            gtin TEXT NOT NULL,
            bound_at REAL NOT NULL,
            source TEXT NOT NULL
        )""",
        f"CREATE INDEX idx_esl_bindings_gtin ON {const.TABLE_ESL_BINDINGS} (gtin)",
        f"""CREATE TABLE {const.TABLE_ESL_ITEMS} (
            gtin TEXT PRIMARY KEY,
            item_json TEXT NOT NULL,
            valid_from REAL,
            command_id TEXT,
            received_at REAL NOT NULL
        )""",
        # One row per label per price update: queued → sent → pending → confirmed | failed (with a reason).
        f"""CREATE TABLE {const.TABLE_ESL_UPDATES} (
            id INTEGER PRIMARY KEY,
            command_id TEXT,
            label TEXT NOT NULL,
            gtin TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            content_hash TEXT,
            due_at REAL NOT NULL,
            created_at REAL NOT NULL,
            sent_at REAL,
            finished_at REAL,
            updatecount_before INTEGER
        )""",
        f"CREATE INDEX idx_esl_updates_state ON {const.TABLE_ESL_UPDATES} (state)",
        f"CREATE INDEX idx_esl_updates_finished ON {const.TABLE_ESL_UPDATES} (finished_at)",
        # Technician requests from the CLI (bind, push) for the running daemon, with their results.
        f"""CREATE TABLE {const.TABLE_ESL_REQUESTS} (
            id INTEGER PRIMARY KEY,
            device TEXT,
            kind TEXT NOT NULL,
            args_json TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'new',
            result_json TEXT,
            created_at REAL NOT NULL,
            finished_at REAL
        )""",
        # Per access point and window: label health at the window's end and update outcomes within it.
        f"""CREATE TABLE {const.TABLE_AGG_ESL} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            ap TEXT NOT NULL,
            ap_state TEXT NOT NULL,
            labels INTEGER NOT NULL,
            low_battery INTEGER NOT NULL,
            timed_out INTEGER NOT NULL,
            missing INTEGER NOT NULL,
            confirmed INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            open_updates INTEGER NOT NULL,
            failures_json TEXT NOT NULL DEFAULT '[]',
            commands_json TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (window_start, ap) ON CONFLICT REPLACE
        )""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations(name="0006_store")
def _store(db: Database) -> None:
    # Fused store traffic, written by the fusion job (edge/fusion_rollup.py) per fused window (traffic.window_s)
    # and per store-local hour. A window is recomputed when late input rows reach it; NULL = source not present.
    statements = [
        f"""CREATE TABLE {const.TABLE_AGG_FOOTFALL} (
            window_start REAL PRIMARY KEY,
            window_end REAL NOT NULL,
            entries INTEGER,
            exits INTEGER,
            occupancy INTEGER,
            occupancy_mean REAL,
            occupancy_max INTEGER,
            person_seconds REAL NOT NULL,
            wifi_visitors INTEGER,
            wifi_quick INTEGER,
            wifi_passersby INTEGER,
            persons_factor REAL NOT NULL,
            came_in REAL NOT NULL,
            visitors REAL NOT NULL,
            quick_visits REAL,
            passersby REAL,
            capture_rate REAL,
            transactions INTEGER,
            conversion REAL,
            entrances_json TEXT NOT NULL DEFAULT '[]'
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_DWELL} (
            window_start REAL PRIMARY KEY,
            window_end REAL NOT NULL,
            wifi_visits INTEGER NOT NULL,
            mean_dwell_s REAL,
            visits_json TEXT NOT NULL,
            persons_json TEXT NOT NULL
        )""",
        f"""CREATE TABLE {const.TABLE_AGG_ZONE_DWELL} (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            zone TEXT NOT NULL,
            person_seconds REAL NOT NULL,
            share REAL,
            device_seconds REAL,
            PRIMARY KEY (window_start, zone)
        )""",
        # The fused floor heatmap: person-seconds per cell of the floor grid (origin at the floor's corner),
        # sparse [[iy * nx + ix, seconds], ...].
        f"""CREATE TABLE {const.TABLE_AGG_FLOOR_HEAT} (
            window_start REAL PRIMARY KEY,
            window_end REAL NOT NULL,
            cell_m REAL NOT NULL,
            nx INTEGER NOT NULL,
            ny INTEGER NOT NULL,
            cells_json TEXT NOT NULL,
            person_seconds REAL NOT NULL,
            camera_seconds REAL NOT NULL,
            wifi_seconds REAL NOT NULL,
            till_seconds REAL NOT NULL
        )""",
        # Per store-local hour: the persons factor (raw and smoothed) and conversion.
        f"""CREATE TABLE {const.TABLE_AGG_STORE_HOURS} (
            window_start REAL PRIMARY KEY,
            window_end REAL NOT NULL,
            entries INTEGER,
            wifi_inside INTEGER,
            factor_raw REAL,
            persons_factor REAL NOT NULL,
            factor_weight REAL NOT NULL,
            transactions INTEGER,
            conversion REAL
        )""",
        # WiFi visits are counted in the window they started in; their probe bursts feed the dwell and passerby
        # estimates (visits stored before this migration count as one burst).
        f"CREATE INDEX idx_wifi_visits_start ON {const.TABLE_WIFI_VISITS} (start)",
        f"ALTER TABLE {const.TABLE_WIFI_VISITS} ADD COLUMN bursts INTEGER NOT NULL DEFAULT 1",
    ]
    for statement in statements:
        db.execute(statement)
