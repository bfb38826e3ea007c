"""``python -m edge`` runs the ``edge`` command."""

from edge.cli.main import main

main()
