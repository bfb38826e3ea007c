"""Config of a WiFi probe sniffer: where frames come from and where the sniffer stands on the floor."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from edge.config.base import DeviceConfig

KEY = "wifi_probe"


class WifiProbeConfig(DeviceConfig):
    """One sniffer: a monitor-mode interface, a pcap/pcapng file to replay, or an ESP32-style node (UDP or serial).

    Raw MACs never leave the driver: each is replaced by a keyed, truncated hash as soon as it is parsed.
    """

    type: Literal["wifi_probe"] = Field(description=f"Driver type, always '{KEY}'")
    source: Literal["monitor", "pcap", "udp", "serial"] = Field(
        description="monitor: live capture on a monitor-mode interface; pcap: replay a pcap/pcapng file; "
                    "udp/serial: JSON lines from a sniffer node"
    )
    interface: str | None = Field(default=None, description="Monitor-mode interface, e.g. wlan1mon (source=monitor)")
    channels: list[int] = Field(
        default_factory=lambda: [6], min_length=1,
        description="Channel plan (source=monitor): one channel stays fixed; several are visited in turn",
    )
    dwell_s: float = Field(default=0.5, gt=0, le=60, description="Time on each channel of a plan (source=monitor)")
    pcap: Path | None = Field(default=None, description="pcap or pcapng file to replay (source=pcap)")
    replay_speed: float = Field(
        default=0.0, ge=0, description="Replay pace: 1 = real time, 10 = ten times faster, 0 = as fast as possible"
    )
    listen: str | None = Field(default=None, description="host:port to receive node JSON lines on (source=udp)")
    port: str | None = Field(default=None, description="Serial port or pyserial URL of a node (source=serial)")
    baudrate: int = Field(default=115200, description="Line speed of a serial node (source=serial)")
    position: tuple[float, float] | None = Field(
        default=None, description="Where the sniffer stands, [x, y] in floor metres (for the WiFi heatmap)"
    )
    zone: str | None = Field(default=None, description="The floor-plan zone this sniffer covers (for zone dwell)")
    rssi_offset_db: float = Field(
        default=0.0, ge=-30, le=30, description="Calibration added to this sniffer's RSSI before any gate"
    )

    @model_validator(mode="after")
    def _source_settings(self) -> Self:
        needed = {"monitor": "interface", "pcap": "pcap", "udp": "listen", "serial": "port"}[self.source]
        if getattr(self, needed) is None:
            raise ValueError(f"source = {self.source!r} needs '{needed}'")
        if self.source == "udp" and self.listen is not None:
            host, _, port = self.listen.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"listen must be host:port, got {self.listen!r}")
        for channel in self.channels:
            if not (1 <= channel <= 14 or 32 <= channel <= 233):
                raise ValueError(f"channel {channel} is not a WiFi channel")
        return self
