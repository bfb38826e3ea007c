"""The config reference (docs/config.md), generated from the models so it can never drift from them."""

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from drivers import registry
from edge.config.models import EdgeConfig

HEADER = """# Config reference

One TOML file, by default `/etc/store-edge/store.toml`. Check it with `edge config check FILE`: every problem is
printed with its key path (`devices[1].baudrate: ...`), unknown keys are errors, and the command exits non-zero.
Secrets are never written inline: a secret field takes `{ credential = "NAME" }` (a systemd credential, read from
`$CREDENTIALS_DIRECTORY`) or `{ file = "/path" }`.

This page is generated from the config models (`edge config reference > docs/config.md`); a test fails when it
drifts from them. Example files: `firmware_configs/stores/`.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(arg).replace("'", '"') for arg in args)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


ROOT = Path(__file__).resolve().parents[2]


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(section)"
        return f"`{value!r}`" if value not in ([], {}) else "empty"
    if field.default is PydanticUndefined:
        return ""
    if isinstance(field.default, Path) and field.default.is_relative_to(ROOT):
        return f"`{field.default.relative_to(ROOT)}` (shipped)"  # the same on every checkout
    return f"`{field.default!r}`".replace("PosixPath(", "Path(")


def _nested(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        found.extend(_nested(arg))
    return found


def _section(title: str, model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    lines = [f"## `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], "",
             "| key | type | default | description |", "| --- | --- | --- | --- |"]
    children: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        type_name = "list of device sections" if name == "devices" else _type_name(field.annotation)
        type_name = type_name.replace("|", "\\|")
        lines.append(f"| `{name}` | {type_name} | {_default(field)} | {description} |")
        for child in _nested(field.annotation):
            if child not in seen and name != "devices":
                seen.add(child)
                children.append((f"{title}.{name}" if title != "(top level)" else name, child))
    lines.append("")
    for child_title, child in children:
        lines.extend(_section(child_title, child, seen))
    return lines


def render() -> str:
    """The whole config reference as Markdown."""
    seen: set[type[BaseModel]] = {EdgeConfig}
    lines = [HEADER, *_section("(top level)", EdgeConfig, seen)]
    lines += ["# Devices", "", "Each `[[devices]]` section has a `type` that selects one of the kinds below.", ""]
    for kind, model in zip(registry.KINDS, registry.config_models(), strict=True):
        seen.add(model)
        lines.extend(_section(f"devices (type = \"{kind.key}\")", model, seen))
    return "\n".join(lines).rstrip() + "\n"
