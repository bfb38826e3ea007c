"""``edge hq ...``: the HQ reference receiver's commands."""

import click


@click.group()
def hq() -> None:
    """HQ side: receive every store's aggregates into SQLite and show their state."""
