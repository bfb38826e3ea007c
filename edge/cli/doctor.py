"""``edge doctor``: checks a technician runs on a new or misbehaving install."""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from edge.cli import common
from edge.config.loader import load_config
from edge.config.models import EdgeConfig
from edge.errors import ConfigError

CAP_NET_RAW_BIT = 13


@dataclass(slots=True, frozen=True)
class Check:
    """One doctor check: ``ok``, ``warn`` or ``fail``, with what was found."""

    name: str
    result: str
    detail: str


def _check_config(path: Path) -> tuple[Check, EdgeConfig | None]:
    try:
        config = load_config(path)
    except ConfigError as err:
        return Check("config", "fail", "; ".join(err.problems)), None
    return Check("config", "ok", f"{path} valid (store {config.store_id})"), config


def _check_db_writable(config: EdgeConfig) -> Check:
    directory = config.storage.path.parent
    if not directory.exists():
        return Check("database", "fail", f"{directory} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            pass
    except OSError as err:
        return Check("database", "fail", f"cannot write in {directory}: {err.strerror}")
    return Check("database", "ok", f"{directory} writable")


def _check_devices(config: EdgeConfig) -> list[Check]:
    checks = []
    for device in config.enabled_devices():
        port = getattr(device, "port", None)
        if not isinstance(port, str) or "://" in port:
            continue
        if not Path(port).exists():
            checks.append(Check(f"device {device.name}", "fail", f"{port} not present (plugged in? udev link?)"))
        elif not os.access(port, os.R_OK | os.W_OK):
            checks.append(Check(f"device {device.name}", "fail", f"{port} not readable/writable (group dialout?)"))
        else:
            checks.append(Check(f"device {device.name}", "ok", f"{port} present"))
    return checks


def _check_capture() -> Check:
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return Check("capture", "warn", "cannot read capabilities")
    cap_eff = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "0")
    if int(cap_eff, 16) >> CAP_NET_RAW_BIT & 1:
        return Check("capture", "ok", "CAP_NET_RAW available for WiFi capture")
    return Check("capture", "warn", "no CAP_NET_RAW: live WiFi capture needs the systemd unit or root")


def _check_disk(config: EdgeConfig) -> Check:
    directory = config.storage.path.parent
    if not directory.exists():
        return Check("disk", "warn", f"{directory} does not exist")
    free_mb = shutil.disk_usage(directory).free // 2**20
    floor = config.storage.min_free_disk_mb
    if free_mb < floor:
        return Check("disk", "fail", f"{free_mb} MB free, below the floor of {floor} MB (raw events shed)")
    return Check("disk", "ok", f"{free_mb} MB free (floor {floor} MB)")


def _check_clock() -> Check:
    timedatectl = shutil.which("timedatectl")
    if timedatectl is None:
        return Check("clock", "warn", "timedatectl not available; cannot tell whether the clock is synchronised")
    try:
        out = subprocess.run([timedatectl, "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("clock", "warn", f"timedatectl failed: {err}")
    if out.stdout.strip() == "yes":
        return Check("clock", "ok", "synchronised (NTP)")
    return Check("clock", "warn", "clock not synchronised: event times and windows may be off")


@click.command()
@common.config_option
@common.json_option
def doctor(config_path: Path | None, as_json: bool) -> None:
    """Check config, database path, devices, capture rights, free disk and clock; exits 1 on a failure."""
    path = common.config_file(config_path)
    first, config = _check_config(path)
    checks = [first]
    if config is not None:
        checks += [_check_db_writable(config), *_check_devices(config), _check_disk(config)]
    checks += [_check_capture(), _check_clock()]
    failed = any(check.result == "fail" for check in checks)
    if as_json:
        common.print_json({"ok": not failed, "checks": checks})
    else:
        for check in checks:
            click.echo(f"[{check.result.upper():>4}] {check.name}: {check.detail}")
    sys.exit(1 if failed else 0)
