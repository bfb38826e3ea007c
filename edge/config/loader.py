"""Reading a config file: TOML syntax errors with their line, validation errors with their key path."""

import tomllib
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from drivers import registry
from edge.config.models import EdgeConfig
from edge.errors import ConfigError

_UNION_TAGS = frozenset(kind.key for kind in registry.KINDS)


def key_path(loc: Sequence[int | str]) -> str:
    """``('devices', 1, 'barcode', 'baudrate')`` → ``devices[1].baudrate`` (the union tag is dropped)."""
    parts: list[str] = []
    previous: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(previous, int) and item in _UNION_TAGS:
            pass  # pydantic names the matched union member; the reader knows it from 'type'
        else:
            parts.append(f".{item}" if parts else str(item))
        previous = item
    return "".join(parts) or "(top level)"


def _problem(error: dict[str, object]) -> str:
    loc = error.get("loc", ())
    path = key_path(loc if isinstance(loc, tuple) else ())
    if error.get("type") == "extra_forbidden":
        return f"{path}: unknown key"
    if error.get("type") == "union_tag_invalid":
        known = ", ".join(sorted(_UNION_TAGS))
        return f"{path}.type: unknown device type (known: {known})"
    message = str(error.get("msg", ""))
    return f"{path}: {message.removeprefix('Value error, ')}"


def parse_config(text: str, source: str = "<config>") -> EdgeConfig:
    """Validate config text; every problem is reported at once in ``ConfigError.problems``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: invalid TOML: {err}") from err
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as err:
        problems = [_problem(dict(error)) for error in err.errors()]
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems) from err


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from err
    return parse_config(text, str(path))
