"""Handlers of commands from HQ: the built-in ``ping`` and ``config/reload``, and routing to ``Commandable`` drivers.

A handler takes the validated ``Command`` and returns its result (a JSON-serialisable dict); it raises
``CommandRejected(reason)`` when it does not apply the command and ``CommandError(reason)`` when applying it
failed. The router (``sync.commands``) turns either into a ``cmd_result`` for HQ.
"""

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from edge.driver import Commandable
from edge.errors import CommandRejected, ConfigError
from sync.wire import Command

Handler: TypeAlias = Callable[[Command], dict[str, Any]]

PING = "ping"
CONFIG_RELOAD = "config/reload"


def _no_args(command: Command) -> None:
    if command.args:
        raise CommandRejected(f"{command.name} takes no arguments (got: {', '.join(sorted(command.args))})")


def ping_handler(version: str, started_at: float, clock: Callable[[], float] = time.time) -> Handler:
    """``ping``: answers with the software version and the daemon's uptime."""

    def handle(command: Command) -> dict[str, Any]:
        _no_args(command)
        return {"pong": True, "version": version, "uptime_s": round(max(0.0, clock() - started_at), 3)}

    return handle


def config_reload_handler(reload: Callable[[], dict[str, Any]]) -> Handler:
    """``config/reload``: re-reads and applies the config file; an invalid file is rejected with its problems."""

    def handle(command: Command) -> dict[str, Any]:
        _no_args(command)
        try:
            return reload()
        except ConfigError as err:
            # The running config stays in force, so the command was not applied: rejected, not failed.
            raise CommandRejected("; ".join(err.problems)) from err

    return handle


def _label(driver: object) -> str:
    config = getattr(driver, "config", None)
    name = getattr(config, "name", None)
    return name if isinstance(name, str) else type(driver).__name__


def _driver_handler(driver: Commandable) -> Handler:
    def handle(command: Command) -> dict[str, Any]:
        return driver.handle_command(command.name, dict(command.args), command.id)

    return handle


def driver_handlers(drivers: Iterable[object]) -> dict[str, Handler]:
    """A handler for every command name of every ``Commandable`` driver; two drivers claiming one name is an error."""
    handlers: dict[str, Handler] = {}
    owners: dict[str, str] = {}
    for driver in drivers:
        if not isinstance(driver, Commandable):
            continue
        for name in sorted(driver.command_names()):
            if name in owners:
                raise ConfigError(f"devices {owners[name]} and {_label(driver)} both handle command {name!r}")
            owners[name] = _label(driver)
            handlers[name] = _driver_handler(driver)
    return handlers


def merge_handlers(*tables: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler table from several; a name in more than one of them is an error rather than a silent override."""
    merged: dict[str, Handler] = {}
    for table in tables:
        clash = sorted(set(merged) & set(table))
        if clash:
            raise ConfigError(f"command {', '.join(repr(n) for n in clash)} has more than one handler")
        merged.update(table)
    return merged
