"""``edge bench NAME --json``: a figure, a baseline measured in the same run, and their ratio."""

import json
import subprocess
import sys

import click

from edge.bench import store as store_bench

IN_PROCESS = {"store": store_bench.run}
# Benchmarks that need simulators (a broker, simulated devices) run as their own program: the daemon's package
# never imports the simulators.
AS_PROGRAM = {"sync": "simulators.bench.sync", "wifi": "simulators.bench.wifi", "camera": "simulators.bench.camera",
              "esl": "simulators.bench.esl"}


@click.command()
@click.argument("name", type=click.Choice(sorted([*IN_PROCESS, *AS_PROGRAM])))
@click.option("--events", default=200_000, show_default=True, help="Events per measurement (store)")
@click.option("--repeat", default=3, show_default=True, help="Measurements of each side; the best is kept (store)")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def bench(name: str, events: int, repeat: int, as_json: bool) -> None:
    """Measure NAME against a baseline measured in the same run: store (writer vs executemany), sync (uplink
    draining a day's backlog vs raw paho publishes), wifi (pcap to stored sightings vs scapy dissection), camera
    (decode + people counting vs decode only, 640x480), esl (a price change to 2,000 labels vs the fake access
    point's single-flight limit)."""
    if name in AS_PROGRAM:
        sys.exit(subprocess.call([sys.executable, "-m", AS_PROGRAM[name], *(["--json"] if as_json else [])]))
    result = IN_PROCESS[name](events=events, repeat=repeat)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key:>14}: {value}")
