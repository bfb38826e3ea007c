"""Helpers shared by CLI commands: finding the config and database, durations, JSON output."""

import dataclasses
import json
import os
import re
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from edge import const
from edge.config.loader import load_config
from edge.config.models import EdgeConfig
from edge.errors import ConfigError, StoreError
from edge.store.db import connect_readonly

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Store config file (default: ${const.ENV_CONFIG} or {const.DEFAULT_CONFIG_PATH})",
)
db_option = click.option(
    "--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
    default=None, help="Database file (default: storage.path from the config)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text")


def config_file(config_path: Path | None) -> Path:
    """The config file to use: the option, then the environment, then the default."""
    return config_path or Path(os.environ.get(const.ENV_CONFIG, const.DEFAULT_CONFIG_PATH))


def load(config_path: Path | None) -> EdgeConfig:
    """Load the config or exit 2 with every problem listed."""
    try:
        return load_config(config_file(config_path))
    except ConfigError as err:
        fail_config(err)


def fail_config(err: ConfigError) -> NoReturn:
    """Print a config error with every problem and exit 2."""
    click.echo(f"config error: {err}", err=True)
    if err.problems != [str(err)]:
        for problem in err.problems:
            click.echo(f"  {problem}", err=True)
    sys.exit(2)


def open_db(config_path: Path | None, db_path: Path | None) -> tuple[sqlite3.Connection, Path]:
    """Open the store read-only, from ``--db`` or the config's ``storage.path``; exit 2 when impossible."""
    path = db_path if db_path is not None else load(config_path).storage.path
    try:
        return connect_readonly(path), path
    except StoreError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_ts(value: str, now: float | None = None) -> float:
    """'90s', '15m', '2h', '7d' ago, or an ISO date/time, as epoch seconds."""
    now = time.time() if now is None else now
    match = _DURATION.match(value.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as err:
        raise click.BadParameter(f"{value!r}: use e.g. 30m, 2h, 7d or an ISO date") from err


def _default(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(value: object) -> None:
    """Print one JSON document."""
    click.echo(json.dumps(value, default=_default, indent=2, sort_keys=False))


def age(seconds: object) -> str:
    """A short human age: '4s', '12m', '3h', '2d', or '-'."""
    if not isinstance(seconds, int | float):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
