"""Small composable fixtures shared by the test suite: migrated temp databases and started writers."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.store.db import migrate
from edge.store.writer import Writer

MakeDb = Callable[[str], Path]
MakeWriter = Callable[..., Writer]


@pytest.fixture
def make_db(tmp_path: Path) -> MakeDb:
    """A factory of migrated databases in ``tmp_path``, one per name (for tests that compare two stores)."""

    def make(name: str = "edge") -> Path:
        path = tmp_path / name / "edge.db"
        migrate(path)
        return path

    return make


@pytest.fixture
def fresh_db(make_db: MakeDb) -> Path:
    """The path of a freshly migrated database in ``tmp_path``."""
    return make_db("edge")


@pytest.fixture
def make_writer() -> Iterator[MakeWriter]:
    """A factory of started ``Writer``s with small test defaults; every writer is stopped at teardown."""
    writers: list[Writer] = []

    def make(path: Path, *, queue_size: int = 10_000, batch_size: int = 500, flush_interval_s: float = 0.05,
             min_free_disk_mb: int = 0, start: bool = True) -> Writer:
        writer = Writer(path, queue_size=queue_size, batch_size=batch_size, flush_interval_s=flush_interval_s,
                        min_free_disk_mb=min_free_disk_mb)
        writers.append(writer)
        if start:
            writer.start()
        return writer

    yield make
    for writer in writers:
        writer.stop()
