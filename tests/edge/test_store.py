"""Opening the store: migrations (idempotent, backed up first), backup retention and read-only connections."""

import operator
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge import const
from edge.errors import StoreError
from edge.events import Scan
from edge.store import db, schema
from edge.store.db import _backup, connect, connect_readonly, migrate

CORE_TABLES = {
    const.TABLE_SCANS, const.TABLE_AGG_SCANS, const.TABLE_DEVICE_STATUS, const.TABLE_DAEMON_STATE,
    const.TABLE_JOB_RUNS, const.TABLE_ROLLUP_STATE,
}


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def insert_scans(path: Path, count: int) -> None:
    conn = connect(path)
    try:
        marks = ", ".join("?" * len(Scan.COLUMNS))
        conn.executemany(
            f"INSERT INTO {Scan.TABLE} ({', '.join(Scan.COLUMNS)}) VALUES ({marks})",
            [operator.attrgetter(*Scan.COLUMNS)(Scan(1_700_000_000.0 + i, "till-1", "E0", f"{i:013d}", "gtin",
                                                      f"{i:014d}", True))
             for i in range(count)],
        )
    finally:
        conn.close()


def with_extra_migration(name: str, *statements: str) -> Migrations:
    """The shipped migrations plus one more, as a later release would have them."""
    extended = Migrations(schema.migrations.name)
    for migration in schema.migrations._migrations:
        extended(name=migration.name, transactional=migration.transactional)(migration.fn)

    def extra(database: Database) -> None:
        for statement in statements:
            database.execute(statement)

    extended(name=name)(extra)
    return extended


def test_migrate__fresh_database_gets_every_core_table(tmp_path: Path) -> None:
    path = tmp_path / "state" / "edge.db"

    applied = migrate(path)

    assert applied[0] == "0001_core"
    assert applied == [m.name for m in schema.migrations.pending(Database(memory=True))]
    assert tables(path) >= CORE_TABLES


def test_migrate__second_run_applies_nothing_and_changes_nothing(fresh_db: Path) -> None:
    insert_scans(fresh_db, 3)
    before = tables(fresh_db)

    assert migrate(fresh_db) == []
    assert tables(fresh_db) == before
    with closing(connect_readonly(fresh_db)) as conn:
        assert conn.execute("SELECT count(*) FROM scans").fetchone()[0] == 3


def test_migrate__fresh_database_is_not_backed_up(fresh_db: Path) -> None:
    assert backups(fresh_db) == []


def test_migrate__existing_data_is_backed_up_before_a_pending_migration(
        fresh_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    insert_scans(fresh_db, 5)
    later_release = with_extra_migration("9999_extra", "CREATE TABLE extra (x INTEGER)")
    monkeypatch.setattr(db, "migrations", later_release)

    applied = migrate(fresh_db)

    assert applied == ["9999_extra"]
    assert "extra" in tables(fresh_db)
    [backup] = backups(fresh_db)
    with closing(sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True)) as copy:
        assert copy.execute("SELECT count(*) FROM scans").fetchone()[0] == 5
        # Taken before the migration ran: the copy has the old schema.
        assert copy.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0


def test_migrate__failing_migration_is_a_store_error_and_leaves_no_partial_schema(
        fresh_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = with_extra_migration("9999_broken", "CREATE TABLE half (x INTEGER)", "SELECT nonsense(")
    monkeypatch.setattr(db, "migrations", broken)
    before = tables(fresh_db)

    with pytest.raises(StoreError, match="cannot migrate"):
        migrate(fresh_db)

    assert tables(fresh_db) == before
    assert [m.name for m in broken.pending(Database(fresh_db))] == ["9999_broken"]


def test_backup__keeps_only_the_newest_copies(fresh_db: Path) -> None:
    insert_scans(fresh_db, 2)
    old = [fresh_db.with_name(f"{fresh_db.name}.bak-{year}0101T000000") for year in (2019, 2020, 2021)]
    for path in old:
        path.write_bytes(b"old backup")

    target = _backup(fresh_db, keep=2)

    assert backups(fresh_db) == [old[-1], target]
    with closing(connect_readonly(target)) as copy:
        assert copy.execute("SELECT count(*) FROM scans").fetchone()[0] == 2


def test_connect_readonly__refuses_writes(fresh_db: Path) -> None:
    conn = connect_readonly(fresh_db)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO rollup_state (kind, watermark) VALUES ('x', 1)")
    finally:
        conn.close()


def test_connect_readonly__missing_file_is_a_store_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "edge.db"

    with pytest.raises(StoreError, match="does not exist"):
        connect_readonly(missing)

    assert not missing.exists()


def test_connect_readonly__file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    junk = tmp_path / "edge.db"
    junk.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match="cannot read database"):
        connect_readonly(junk)
