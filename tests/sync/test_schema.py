"""The HQ contract stays honest: docs/schema/ matches the wire models and every example in docs/mqtt.md validates."""

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from sync import wire
from sync.schema import SCHEMAS, main, render_schemas, write_schemas

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "schema"
MQTT_DOC = ROOT / "docs" / "mqtt.md"
REGENERATE = "run `.venv/bin/python -m sync.schema` and commit docs/schema/"

# An example is a ```json block right after a line `<!-- example: ModelName -->` naming a model in sync.wire.
EXAMPLE = re.compile(r"<!-- example: (?P<model>\w+) -->\n```json\n(?P<body>.*?)\n```", re.DOTALL)
JSON_BLOCK = re.compile(r"^```json$", re.MULTILINE)


def test_schema__committed_files_match_the_models() -> None:
    rendered = render_schemas()
    committed = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.json")}
    missing, extra = sorted(set(rendered) - set(committed)), sorted(set(committed) - set(rendered))
    assert not missing, f"docs/schema/ lacks {missing}: {REGENERATE}"
    assert not extra, f"docs/schema/ has files no model generates, {extra}: delete them, then {REGENERATE}"
    drifted = sorted(name for name in rendered if rendered[name] != committed[name])
    assert not drifted, f"docs/schema/ drifted from sync/wire.py in {drifted}: {REGENERATE}"


def test_schema__one_file_per_message_with_the_right_mode() -> None:
    assert set(SCHEMAS) == {"agg-scans.json", "agg-health.json", "agg-presence.json", "agg-visits.json",
                            "agg-zones.json", "agg-traffic.json", "agg-heatmap.json", "state.json", "cmd.json",
                            "cmd_result.json", "agg-footfall.json", "agg-dwell.json", "agg-zone_dwell.json",
                            "agg-floor_heatmap.json", "agg-esl.json"}
    schemas = {name: json.loads(text) for name, text in render_schemas().items()}
    # Validation mode: what the gateway accepts, so defaulted fields are optional.
    assert set(schemas["cmd.json"]["required"]) == {"id", "name", "store", "issued_at"}
    assert all(s["additionalProperties"] is False for s in schemas.values())
    assert all(text.endswith("}\n") for text in render_schemas().values())


def test_schema__write_and_cli_produce_the_rendered_files(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "a")
    assert {p.name: p.read_text(encoding="utf-8") for p in written} == render_schemas()
    assert main([str(tmp_path / "b")]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(render_schemas())
    assert main(["--help"]) == 2


def _examples() -> list[tuple[str, str]]:
    return [(m["model"], m["body"]) for m in EXAMPLE.finditer(MQTT_DOC.read_text(encoding="utf-8"))]


def test_mqtt_doc__every_json_block_is_a_marked_example() -> None:
    text = MQTT_DOC.read_text(encoding="utf-8")
    assert len(JSON_BLOCK.findall(text)) == len(_examples()), "a ```json block in docs/mqtt.md has no example marker"
    assert {model for model, _ in _examples()} >= {"ScansMessage", "HealthMessage", "StateMessage", "Command",
                                                   "CommandResult"}


@pytest.mark.parametrize(("model", "body"), _examples(), ids=[f"{i}-{m}" for i, (m, _) in enumerate(_examples())])
def test_mqtt_doc__example_validates_against_its_model(model: str, body: str) -> None:
    cls = getattr(wire, model, None)
    assert isinstance(cls, type) and issubclass(cls, BaseModel), f"docs/mqtt.md names unknown model {model}"
    cls.model_validate_json(body)


def test_mqtt_doc__links_every_schema_file() -> None:
    text = MQTT_DOC.read_text(encoding="utf-8")
    for name in render_schemas():
        assert f"(schema/{name})" in text, f"docs/mqtt.md does not link schema/{name}"
