"""Device ids under privacy: keyed hashes per salt period, rotation at store-local midnight, old salts destroyed."""

import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge import const
from edge.privacy import Hasher, period_start, truncate_wal, vendor_oui
from tests.conftest import MakeWriter

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAC = bytes.fromhex("3c22fb0a1b2c")
RANDOM_MAC = bytes.fromhex("da22fb0a1b2c")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def _hasher(writer_call: object, checkpoint: object = None) -> Hasher:
    return Hasher(SHANGHAI, "daily", writer_call, checkpoint)  # type: ignore[arg-type]


def test_period__starts_at_store_local_midnight() -> None:
    assert period_start(_ts("2026-11-23T23:59:59"), SHANGHAI, "daily") == _ts("2026-11-23T00:00:00")
    assert period_start(_ts("2026-11-24T00:00:00"), SHANGHAI, "daily") == _ts("2026-11-24T00:00:00")
    assert period_start(_ts("2026-11-26T15:00:00"), SHANGHAI, "weekly") == _ts("2026-11-23T00:00:00")  # a Monday


def test_hasher__same_mac_same_id_within_a_day_and_different_across_midnight(
    fresh_db: Path, make_writer: MakeWriter
) -> None:
    writer = make_writer(fresh_db)
    hasher = _hasher(writer.call)
    morning = hasher.device_id(MAC, _ts("2026-11-23T09:00:00"))
    evening = hasher.device_id(MAC, _ts("2026-11-23T21:00:00"))
    next_day = hasher.device_id(MAC, _ts("2026-11-24T00:00:01"))
    assert morning == evening
    assert next_day != morning
    assert len(morning) == 16 and int(morning, 16) >= 0
    assert MAC.hex() not in morning


def test_hasher__a_restart_within_the_period_keeps_ids(fresh_db: Path, make_writer: MakeWriter) -> None:
    writer = make_writer(fresh_db)
    first = _hasher(writer.call).device_id(MAC, _ts("2026-11-23T09:00:00"))
    again = _hasher(writer.call).device_id(MAC, _ts("2026-11-23T18:00:00"))
    assert first == again, "the salt of the current period is kept in the store"


def test_hasher__rotation_destroys_the_old_salt_on_disk(fresh_db: Path, make_writer: MakeWriter) -> None:
    writer = make_writer(fresh_db)
    hasher = _hasher(writer.call, lambda: writer.call(truncate_wal, transaction=False))
    hasher.device_id(MAC, _ts("2026-11-23T09:00:00"))
    old_salt = sqlite3.connect(fresh_db).execute(f"SELECT salt FROM {const.TABLE_PRIVACY_SALTS}").fetchone()[0]
    hasher.device_id(MAC, _ts("2026-11-24T09:00:00"))
    writer.stop()
    rows = sqlite3.connect(fresh_db).execute(f"SELECT period_start FROM {const.TABLE_PRIVACY_SALTS}").fetchall()
    assert rows == [(_ts("2026-11-24T00:00:00"),)]
    on_disk = b"".join(p.read_bytes() for p in fresh_db.parent.glob(fresh_db.name + "*"))
    assert bytes(old_salt) not in on_disk, "the old salt's bytes are gone from the database and its WAL"


def test_hasher__frames_from_a_past_period_never_reuse_or_store_a_salt(fresh_db: Path, make_writer: MakeWriter) -> None:
    writer = make_writer(fresh_db)
    hasher = _hasher(writer.call)
    today = hasher.device_id(MAC, _ts("2026-11-24T09:00:00"))
    yesterday = hasher.device_id(MAC, _ts("2026-11-23T09:00:00"))
    assert yesterday != today
    count = sqlite3.connect(fresh_db).execute(f"SELECT count(*) FROM {const.TABLE_PRIVACY_SALTS}").fetchone()[0]
    assert count == 1


def test_vendor_oui__kept_only_for_universal_macs() -> None:
    assert vendor_oui(MAC) == "3c:22:fb"
    assert vendor_oui(RANDOM_MAC) is None
