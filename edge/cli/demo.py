"""``edge demo``: the daemon over a simulated store (the simulators run in their own process)."""

import subprocess
import sys

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--duration", default=30.0, show_default=True, help="Seconds the simulated store runs")
@click.option("--workdir", default="demo-run", show_default=True, help="Where the demo's config, database and logs go")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object of the demo's figures")
def demo(duration: float, workdir: str, as_json: bool) -> None:
    """Run the real daemon against simulated devices, then show status and a scans summary."""
    # The simulators are a separate package the daemon never imports; run them as their own program.
    command = [sys.executable, "-m", "simulators.demo", "--duration", str(duration), "--workdir", workdir]
    if as_json:
        command.append("--json")
    sys.exit(subprocess.call(command))
