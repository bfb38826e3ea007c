"""The registry of driver kinds: config models imported eagerly, driver classes imported lazily.

A new kind is a new folder under ``drivers/`` plus one line in ``KINDS``. Config modules import only pydantic,
so loading every config model is cheap; a driver module (which imports pyserial, scapy, OpenCV, ...) is
imported only when a device of that kind is started, and a missing library becomes a ``ConfigError``.
"""

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.errors import ConfigError

if TYPE_CHECKING:
    import click

    from edge.config.base import DeviceConfig
    from edge.driver import Driver


@dataclass(frozen=True, slots=True)
class Kind:
    """Where a driver kind's config model, driver class and optional CLI group live (``module:attribute``)."""

    key: str
    config: str
    driver: str
    cli: str | None = None


KINDS: tuple[Kind, ...] = (
    Kind("barcode", "drivers.barcode.config:BarcodeConfig", "drivers.barcode.driver:BarcodeDriver"),
    Kind("camera", "drivers.camera.config:CameraConfig", "drivers.camera.driver:CameraDriver"),
    Kind("esl", "drivers.esl.config:EslConfig", "drivers.esl.driver:EslDriver", "drivers.esl.cli:esl"),
    Kind("wifi_probe", "drivers.wifi_probe.config:WifiProbeConfig", "drivers.wifi_probe.driver:WifiProbeDriver",
         "drivers.wifi_probe.cli:wifi"),
)


def _load(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def config_models() -> tuple[type["DeviceConfig"], ...]:
    """Every kind's config model, in registry order."""
    return tuple(_load(kind.config) for kind in KINDS)  # type: ignore[misc]


def cli_commands() -> list["click.Command"]:
    """The per-family command groups (``edge wifi ...``), so the CLI needs no driver internals."""
    return [_load(kind.cli) for kind in KINDS if kind.cli is not None]  # type: ignore[misc]


def driver_class(key: str) -> type["Driver"]:
    """The driver class for a kind, imported now; a missing library is reported as a config error."""
    for kind in KINDS:
        if kind.key == key:
            try:
                return _load(kind.driver)  # type: ignore[return-value]
            except ImportError as err:
                raise ConfigError(
                    f"devices of type {key!r} need the Python package {err.name!r}, which is not installed"
                ) from err
    raise ConfigError(f"unknown device type {key!r}")
