"""Config of one OpenEPaperLink-compatible access point: where it is, how uploads are paced, when to give up."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, HttpUrl, model_validator

from edge.config.base import DeviceConfig

KEY = "esl"
# Tag types and templates that ship with the gateway (``firmware_configs/esl``).
SHIPPED_CONTENT = Path(__file__).resolve().parents[2] / "firmware_configs" / "esl"


class EslConfig(DeviceConfig):
    """One ESL access point speaking the OpenEPaperLink HTTP + websocket protocol."""

    type: Literal["esl"] = Field(description=f"Driver type, always '{KEY}'")
    url: HttpUrl = Field(description="Base URL of the access point, e.g. 'http://192.168.1.40' (websocket at /ws)")
    content: Literal["json", "image"] = Field(
        default="json",
        description="How labels get their content: json = an OEPL JSON template drawn by the AP (/jsonupload); "
                    "image = a baseline JPEG rendered here at the tag's exact resolution (/imgupload)",
    )
    content_dir: Path = Field(
        default=SHIPPED_CONTENT,
        description="Directory with tagtypes/XX.json and templates/WxH.json (default: shipped firmware_configs/esl)",
    )
    http_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Timeout of one HTTP request to the AP")
    min_upload_interval_s: float = Field(
        default=0.0, ge=0, le=60,
        description="Cooldown between the starts of two uploads. One upload is in flight at a time and the AP "
                    "answers once it has stored the content, so 0 keeps it exactly as busy as it can be; raise it "
                    "for an AP that needs a pause (after 409 or a timeout the busy backoff applies anyway)",
    )
    busy_backoff_s: float = Field(
        default=1.0, gt=0, le=60, description="First wait after HTTP 409 'come back later' or a timeout; doubles"
    )
    busy_backoff_max_s: float = Field(default=30.0, gt=0, le=600, description="Cap of that wait")
    upload_attempts: int = Field(
        default=4, ge=1, le=20, description="Uploads of one update before it fails (409s and timeouts count)"
    )
    transfer_attempts: int = Field(
        default=2, ge=1, le=10, description="Times one update is pushed again after the label's transfer timed out"
    )
    confirm_deadline_s: float = Field(
        default=1800.0, gt=0, le=7 * 86400,
        description="An update not confirmed this long after it became due fails (labels check in every 40 s "
                    "to maxsleep minutes; the block transfer adds seconds)",
    )
    reconcile_s: float = Field(default=300.0, ge=5, le=86400, description="Full /get_db reconciliation interval")
    get_db_retries: int = Field(default=3, ge=1, le=10, description="Tries per /get_db page before a fetch is partial")
    window_s: int = Field(default=300, ge=10, le=3600, description="Window of agg/esl rows (label health, outcomes)")
    low_battery_mv: int = Field(default=2400, ge=0, le=5000, description="Below this a label's battery is low")
    maxsleep_min: int = Field(
        default=10, ge=0, le=1440, description="The AP's maxsleep (minutes) when it does not report one; timeout rule"
    )
    checkin_grace_s: float = Field(
        default=600.0, ge=0, le=86400, description="The AP's timeout rule: seconds past nextcheckin before 'timed out'"
    )
    history_every_s: float = Field(
        default=3600.0, ge=60, le=86400,
        description="A label's history gets a row at least this often; changes of battery, pending, update count "
                    "or wake-up reason always add one",
    )
    pairing_scanners: list[str] = Field(
        default_factory=list,
        description="Barcode devices whose scans pair labels: scan a label's barcode, then a product's",
    )
    pairing_window_s: float = Field(
        default=60.0, gt=0, le=3600, description="Most seconds between the label scan and the product scan"
    )
    reconnect_max_s: float = Field(default=30.0, gt=0, le=600, description="Cap of the websocket reconnect backoff")

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.busy_backoff_max_s < self.busy_backoff_s:
            raise ValueError("busy_backoff_max_s must be at least busy_backoff_s")
        return self

    @property
    def base_url(self) -> str:
        """The AP's URL without a trailing slash."""
        return str(self.url).rstrip("/")
