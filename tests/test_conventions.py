"""House rules enforced by tests: CLI help and docs, generated docs in sync, import boundaries, shipped configs."""

import ast
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from edge.cli.main import cli
from edge.config.loader import load_config
from edge.config.reference import render

ROOT = Path(__file__).resolve().parents[1]
IO_LIBRARIES = {"serial", "socket", "scapy", "cv2", "paho", "sqlite3", "sqlite_utils", "requests", "urllib",
                "http", "asyncio", "subprocess", "threading", "time"}


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


COMMANDS = sorted(_commands(cli))


def test_cli__has_commands() -> None:
    assert {"run", "status", "devices", "scans", "config check", "doctor", "bench", "demo"} <= {p for p, _ in COMMANDS}


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_cli__every_command_has_help_and_is_documented(path: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"edge {path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"edge {path} {param.opts[0]} has no help text"
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"`edge {path}" in docs, f"edge {path} is missing from docs/cli.md"


def test_docs__config_reference_matches_the_models() -> None:
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/config.md drifted: run `edge config reference > docs/config.md`"


SHIPPED_CONFIGS = sorted((ROOT / "firmware_configs" / "stores").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=[p.name for p in SHIPPED_CONFIGS])
def test_firmware_configs__every_store_config_validates(path: Path) -> None:
    load_config(path)


def test_firmware_configs__store_configs_exist() -> None:
    assert SHIPPED_CONFIGS


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


PURE_MODULES = ("protocol", "config", "node", "gs1", "content", "requests", "items", "drawing", "updates", "labels")
PURE_FILES = sorted(path for name in PURE_MODULES for path in ROOT.glob(f"drivers/*/{name}.py"))


@pytest.mark.parametrize("path", PURE_FILES, ids=[str(p.relative_to(ROOT)) for p in PURE_FILES])
def test_drivers__protocol_and_config_import_no_io_library(path: Path) -> None:
    offending = {name for name in _imports(path) if name.split(".")[0] in IO_LIBRARIES}
    assert not offending, f"{path.relative_to(ROOT)} imports I/O libraries {offending}"


def _package_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _package_files("edge"), ids=lambda p: str(p.relative_to(ROOT)))
def test_edge__imports_only_the_driver_registry(path: Path) -> None:
    driver_imports = {name for name in _imports(path) if name.split(".")[0] == "drivers"}
    assert driver_imports <= {"drivers", "drivers.registry"}, f"{path.relative_to(ROOT)} imports {driver_imports}"


@pytest.mark.parametrize("path", _package_files("edge", "drivers", "sync"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core__never_imports_simulators(path: Path) -> None:
    assert not {n for n in _imports(path) if n.split(".")[0] == "simulators"}


def test_drivers__every_kind_has_the_fixed_files() -> None:
    from drivers.registry import KINDS

    for kind in KINDS:
        folder = ROOT / "drivers" / kind.key
        for name in ("__init__.py", "config.py", "protocol.py", "driver.py"):
            assert (folder / name).exists(), f"drivers/{kind.key}/{name} is missing"
        for name in ("protocol", "driver"):
            assert (ROOT / "tests" / "drivers" / f"test_{kind.key}_{name}.py").exists()


def test_modules__every_module_has_a_docstring() -> None:
    for path in _package_files("edge", "drivers", "sync", "simulators"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no module docstring"
