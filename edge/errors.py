"""The one exception hierarchy of StoreEdge.

    EdgeError
    ├── ConfigError            a config file is missing, unreadable or invalid
    ├── StoreError             the SQLite store cannot be opened, migrated or written
    ├── DeviceError            a device misbehaves
    │   └── DeviceUnavailable  a device cannot be opened or vanished (retried with backoff)
    ├── ProtocolError          bytes from a device that cannot be decoded
    ├── SyncError              the MQTT uplink cannot be set up (bad TLS files, bad broker URL)
    └── CommandError           a command from HQ is not applied
        └── CommandRejected    ... because it is invalid, foreign, expired, unknown or a duplicate

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


class SyncError(EdgeError):
    """The MQTT uplink cannot be set up (bad TLS files, unreadable credentials, bad broker URL)."""


class CommandError(EdgeError):
    """A command from HQ was applied but failed; the message is the reason sent back to HQ."""


class CommandRejected(CommandError):
    """A command from HQ is not applied (invalid, foreign, expired, unknown); the message is the reason."""
