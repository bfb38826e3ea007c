"""``edge demo``: a simulated store day through the real daemon (the simulators run in their own process)."""

import subprocess
import sys

import click


@click.command()
@click.option("--workdir", default="demo-run", show_default=True, help="Where the day, config, databases and logs go")
@click.option("--seed", default=1, show_default=True, help="Seed of the simulated store day")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object of the demo's figures")
def demo(workdir: str, seed: int, as_json: bool) -> None:
    """Simulate yesterday at the demo store — WiFi sniffers, the door camera, two tills, shelf labels — run the
    daemon over it with a local HQ, then show status, the traffic table, the heatmap and the daily report against
    the ground truth. Exits 1 when HQ missed an aggregate or the day's entries are more than 2 % off."""
    # The simulators are a separate package the daemon never imports; run them as their own program.
    command = [sys.executable, "-m", "simulators.demo", "--workdir", workdir, "--seed", str(seed)]
    if as_json:
        command.append("--json")
    sys.exit(subprocess.call(command))
