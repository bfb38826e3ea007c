"""The base every config model subclasses, and references to secrets kept outside the config file."""

import os
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.errors import ConfigError

NOT_INSTALLED = "not-installed"  # the placeholder the systemd unit passes for a credential file that is missing


class StrictModel(BaseModel):
    """Config base: unknown keys are errors, values are validated on assignment, models are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SecretRef(StrictModel):
    """Where a secret lives: a systemd credential name (under ``$CREDENTIALS_DIRECTORY``) or a file path.

    Secrets are never written inline in the config file.
    """

    credential: str | None = Field(
        default=None,
        description="Name of a systemd credential (LoadCredential=NAME:...), read from $CREDENTIALS_DIRECTORY",
    )
    file: Path | None = Field(default=None, description="Path of a file holding the secret (first line is used)")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.credential is None) == (self.file is None):
            raise ValueError("give exactly one of 'credential' or 'file'")
        return self

    def path(self) -> Path:
        """The file the secret is read from."""
        if self.file is not None:
            return self.file
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(f"secret credential {self.credential!r}: $CREDENTIALS_DIRECTORY is not set")
        return Path(directory) / str(self.credential)

    def read(self) -> str:
        """The secret's value, stripped of its trailing newline."""
        path = self.path()
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as err:
            raise ConfigError(f"secret {path}: {err.strerror}") from err
        if value == NOT_INSTALLED:
            # The systemd unit's SetCredential= placeholder: the real file was never put in place.
            raise ConfigError(f"secret credential {self.credential!r} is not installed: put it in "
                              f"/etc/store-edge/credentials/ (see docs/install.md) and restart the service")
        return value


DEVICE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class DeviceConfig(StrictModel):
    """Fields every device section has; each driver's config subclasses this and adds ``type: Literal[KEY]``."""

    type: str = Field(description="Driver kind, e.g. 'barcode'; selects which fields apply")
    name: str = Field(
        pattern=DEVICE_NAME_PATTERN,
        description="Unique device name used in status, tables and topics (lower case, digits, '-' and '_')",
    )
    enabled: bool = Field(default=True, description="Start this device with the daemon")
