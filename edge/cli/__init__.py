"""The ``edge`` command: the daemon and the technician's tools."""
