"""Fixtures for end-to-end tests: the real daemon as a subprocess, configured against simulators."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def edge_command(*args: str) -> list[str]:
    """The ``edge`` CLI run with this interpreter."""
    return [sys.executable, "-m", "edge", *args]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true or fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Daemon:
    """A daemon process over a config file in a temp dir."""

    config: Path
    db: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    _logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        """Start ``edge run`` in the background, logging to a file."""
        handle = self.log.open("ab")
        self.process = subprocess.Popen(edge_command("run", "--config", str(self.config)), stdout=handle,
                                        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        handle.close()

    def status(self) -> dict[str, object]:
        """``edge status --json`` as a dict (exit code ignored; it is non-zero when degraded)."""
        out = subprocess.run(edge_command("status", "--config", str(self.config), "--json"), capture_output=True,
                             text=True, check=False)
        return json.loads(out.stdout) if out.stdout else {}

    def device(self, name: str) -> dict[str, object]:
        """One device's entry in the status, or {} before the first heartbeat."""
        devices = self.status().get("devices", [])
        assert isinstance(devices, list)
        return next((d for d in devices if d["name"] == name), {})

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait for the exit code; the daemon must exit within 10 s of SIGTERM."""
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[str], Daemon]]:
    """A factory: ``daemon(devices_toml)`` writes a config with those device sections and returns a Daemon."""
    made: list[Daemon] = []

    def make(devices: str) -> Daemon:
        db = tmp_path / "edge.db"
        config = tmp_path / "store.toml"
        config.write_text(
            f"""store_id = "test-0001"
[storage]
path = "{db}"
min_free_disk_mb = 0
flush_interval_s = 0.05
[runtime]
heartbeat_s = 0.5
rollup_window_s = 10
rollup_lateness_s = 0.5
{devices}""",
            encoding="utf-8",
        )
        instance = Daemon(config=config, db=db, log=tmp_path / "daemon.log")
        made.append(instance)
        return instance

    yield make
    for instance in made:
        if instance.process is not None:
            instance.process.kill()
            instance.process.wait()
