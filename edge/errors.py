"""The one exception hierarchy of StoreEdge.

    EdgeError
    ├── ConfigError            a config file is missing, unreadable or invalid
    ├── StoreError             the SQLite store cannot be opened, migrated or written
    ├── DeviceError            a device misbehaves
    │   └── DeviceUnavailable  a device cannot be opened or vanished (retried with backoff)
    └── ProtocolError          bytes from a device that cannot be decoded

Library errors (``serial.SerialException``, ``OSError``, ``sqlite3.Error``, ``tomllib.TOMLDecodeError``,
``pydantic.ValidationError``) are caught at the boundary and re-raised as one of these ``from err``.
"""


class EdgeError(Exception):
    """Base of every error raised by StoreEdge code."""


class ConfigError(EdgeError):
    """A config file is missing, unreadable or invalid; ``problems`` lists each one with its key path."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems if problems is not None else [message]


class StoreError(EdgeError):
    """The SQLite store cannot be opened, migrated or written."""


class DeviceError(EdgeError):
    """A device misbehaves."""


class DeviceUnavailable(DeviceError):
    """A device cannot be opened or has vanished; the driver retries with backoff."""


class ProtocolError(EdgeError):
    """Bytes from a device cannot be decoded."""
