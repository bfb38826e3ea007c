"""Device ids under privacy: keyed hashes per salt period, rotation at store-local midnight, old salts destroyed."""

import json
import stat
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.privacy import Hasher, period_start, vendor_oui

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAC = bytes.fromhex("3c22fb0a1b2c")
RANDOM_MAC = bytes.fromhex("da22fb0a1b2c")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def test_period__starts_at_store_local_midnight() -> None:
    assert period_start(_ts("2026-11-23T23:59:59"), SHANGHAI, "daily") == _ts("2026-11-23T00:00:00")
    assert period_start(_ts("2026-11-24T00:00:00"), SHANGHAI, "daily") == _ts("2026-11-24T00:00:00")
    assert period_start(_ts("2026-11-26T15:00:00"), SHANGHAI, "weekly") == _ts("2026-11-23T00:00:00")  # a Monday


def test_hasher__same_mac_same_id_within_a_day_and_different_across_midnight(tmp_path: Path) -> None:
    hasher = Hasher(SHANGHAI, "daily", tmp_path / "edge.db.salt")
    morning = hasher.device_id(MAC, _ts("2026-11-23T09:00:00"))
    evening = hasher.device_id(MAC, _ts("2026-11-23T21:00:00"))
    next_day = hasher.device_id(MAC, _ts("2026-11-24T00:00:01"))
    assert morning == evening
    assert next_day != morning
    assert len(morning) == 16 and int(morning, 16) >= 0
    assert MAC.hex() not in morning


def test_hasher__a_restart_within_the_period_keeps_ids(tmp_path: Path) -> None:
    first = Hasher(SHANGHAI, "daily", tmp_path / "s").device_id(MAC, _ts("2026-11-23T09:00:00"))
    again = Hasher(SHANGHAI, "daily", tmp_path / "s").device_id(MAC, _ts("2026-11-23T18:00:00"))
    assert first == again, "the current period's salt survives a restart"


def test_hasher__rotation_replaces_the_salt_file_and_the_old_salt_is_gone(tmp_path: Path) -> None:
    salt_file = tmp_path / "edge.db.salt"
    hasher = Hasher(SHANGHAI, "daily", salt_file)
    hasher.device_id(MAC, _ts("2026-11-23T09:00:00"))
    old = json.loads(salt_file.read_text())
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600, "only the service user can read the salt"
    hasher.device_id(MAC, _ts("2026-11-24T09:00:00"))
    new = json.loads(salt_file.read_text())
    assert new["period_start"] == _ts("2026-11-24T00:00:00")
    everything = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert old["salt"].encode() not in everything and bytes.fromhex(old["salt"]) not in everything
    assert [p.name for p in tmp_path.iterdir()] == ["edge.db.salt"], "no temporary copy is left behind"


def test_hasher__frames_from_a_past_period_get_a_throwaway_salt(tmp_path: Path) -> None:
    salt_file = tmp_path / "edge.db.salt"
    hasher = Hasher(SHANGHAI, "daily", salt_file)
    today = hasher.device_id(MAC, _ts("2026-11-24T09:00:00"))
    stored = salt_file.read_text()
    yesterday = hasher.device_id(MAC, _ts("2026-11-23T09:00:00"))
    assert yesterday != today
    assert salt_file.read_text() == stored, "a replayed older period never replaces or stores a salt"


def test_vendor_oui__kept_only_for_universal_macs() -> None:
    assert vendor_oui(MAC) == "3c:22:fb"
    assert vendor_oui(RANDOM_MAC) is None
