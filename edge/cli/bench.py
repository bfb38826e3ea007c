"""``edge bench NAME --json``: a figure, a baseline measured in the same run, and their ratio."""

import json
import sys

import click

from edge.bench import store as store_bench

BENCHES = {"store": store_bench.run}


@click.command()
@click.argument("name", type=click.Choice(sorted(BENCHES)))
@click.option("--events", default=200_000, show_default=True, help="Events per measurement")
@click.option("--repeat", default=3, show_default=True, help="Measurements of each side; the best is kept")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def bench(name: str, events: int, repeat: int, as_json: bool) -> None:
    """Measure NAME against its baseline on this machine (store: events/s through the writer vs executemany)."""
    result = BENCHES[name](events=events, repeat=repeat)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key:>14}: {value}")
    sys.exit(0)
