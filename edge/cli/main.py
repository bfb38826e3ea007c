"""Entry point of the ``edge`` command: a click group with one module per area."""

import logging
import sys
from pathlib import Path

import click

from drivers import registry
from edge import __version__
from edge.cli import bench, camera, common, demo, doctor, reports, traffic
from edge.config.loader import load_config
from edge.errors import ConfigError, EdgeError
from sync.hq.cli import hq


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge")
def cli() -> None:
    """StoreEdge in-store gateway: run the daemon and look after it."""


@cli.command()
@common.config_option
def run(config_path: Path | None) -> None:
    """Run the daemon in the foreground (systemd runs this)."""
    from edge.app import App

    path = common.config_file(config_path)
    config = common.load(path)
    logging.basicConfig(
        level=config.runtime.log_level, stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s" if _under_systemd() else
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # APScheduler logs every job run at INFO; the daemon records runs in the store instead.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = App(config, path)
    try:
        app.run_until_signal()
    except ConfigError as err:
        common.fail_config(err)
    except EdgeError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)


@cli.group(name="config")
def config_group() -> None:
    """Check store config files."""


@config_group.command(name="check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@common.json_option
def config_check(file: Path, as_json: bool) -> None:
    """Validate FILE; print every problem with its key path and exit non-zero when there are any."""
    try:
        config = load_config(file)
    except ConfigError as err:
        if as_json:
            common.print_json({"ok": False, "file": str(file), "problems": err.problems})
            sys.exit(2)
        common.fail_config(err)
    if as_json:
        common.print_json({"ok": True, "file": str(file), "store_id": config.store_id,
                           "devices": [d.name for d in config.devices]})
    else:
        click.echo(f"{file}: ok (store {config.store_id}, {len(config.devices)} device(s))")


@config_group.command(name="reference")
def config_reference() -> None:
    """Print the config reference (every key, type, default and meaning) as Markdown."""
    from edge.config.reference import render

    click.echo(render(), nl=False)


def _under_systemd() -> bool:
    import os

    return "INVOCATION_ID" in os.environ or "NOTIFY_SOCKET" in os.environ


reports.register(cli)
for family_group in registry.cli_commands():
    cli.add_command(family_group)
cli.add_command(hq)
cli.add_command(doctor.doctor)
cli.add_command(bench.bench)
cli.add_command(demo.demo)
cli.add_command(camera.camera)
cli.add_command(traffic.heatmap)
cli.add_command(traffic.traffic)
cli.add_command(traffic.report)


def main() -> None:
    """Console-script entry point."""
    cli()
