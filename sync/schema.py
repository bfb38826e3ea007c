"""JSON Schemas of the MQTT payloads, generated from the wire models: ``python -m sync.schema [DIR]`` (docs/schema).

Uplink messages are described as StoreEdge serialises them (pydantic ``mode="serialization"``); the downlink
``Command`` as StoreEdge validates it (``mode="validation"``). A test fails when ``docs/schema/`` drifts.
"""

import json
import sys
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel

from sync.wire import (
    Command,
    CommandResult,
    DwellMessage,
    EslMessage,
    FloorHeatmapMessage,
    FootfallMessage,
    HealthMessage,
    HeatmapMessage,
    PresenceMessage,
    ScansMessage,
    StateMessage,
    TrafficMessage,
    VisitsMessage,
    ZoneDwellMessage,
    ZonesMessage,
)

DEFAULT_DIR: Final = Path("docs/schema")
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

# File name → (model, schema mode). One file per message on the wire.
SCHEMAS: Final[dict[str, tuple[type[BaseModel], Literal["validation", "serialization"]]]] = {
    "agg-scans.json": (ScansMessage, "serialization"),
    "agg-health.json": (HealthMessage, "serialization"),
    "agg-presence.json": (PresenceMessage, "serialization"),
    "agg-visits.json": (VisitsMessage, "serialization"),
    "agg-zones.json": (ZonesMessage, "serialization"),
    "agg-traffic.json": (TrafficMessage, "serialization"),
    "agg-heatmap.json": (HeatmapMessage, "serialization"),
    "agg-esl.json": (EslMessage, "serialization"),
    "agg-footfall.json": (FootfallMessage, "serialization"),
    "agg-dwell.json": (DwellMessage, "serialization"),
    "agg-zone_dwell.json": (ZoneDwellMessage, "serialization"),
    "agg-floor_heatmap.json": (FloorHeatmapMessage, "serialization"),
    "state.json": (StateMessage, "serialization"),
    "cmd.json": (Command, "validation"),
    "cmd_result.json": (CommandResult, "serialization"),
}


def render_schemas() -> dict[str, str]:
    """File name → JSON Schema text (sorted keys, two-space indent, trailing newline) of every wire message."""
    rendered: dict[str, str] = {}
    for name, (model, mode) in SCHEMAS.items():
        schema = {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode=mode)}
        rendered[name] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return rendered


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory`` (created if needed); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Regenerate the schema files; the one optional argument is the directory."""
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        sys.stderr.write("usage: python -m sync.schema [DIR]   (default docs/schema)\n")
        return 2
    for path in write_schemas(Path(argv[0]) if argv else DEFAULT_DIR):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
