"""Config of a WiFi probe sniffer: where frames come from and where the sniffer stands on the floor."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from edge.config.base import DeviceConfig, StrictModel

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


class SnifferNodeSettings(StrictModel):
    """Settings flashed onto an ESP32-style sniffer node (``firmware_configs/sniffer_nodes/*.toml``).

    The node hops the channel plan, hears probe requests, and sends one JSON line per frame (``mac``, ``rssi``,
    ``ch``, ``seq``, ``ts``, ``fp``, ``ssid_len``, ``node``) to the gateway over UDP or its USB serial port, where a
    ``wifi_probe`` device with ``source = "udp"`` or ``"serial"`` receives them.
    """

    node: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$", description="Node name sent in every line")
    channels: list[int] = Field(default_factory=lambda: [1, 6, 11], min_length=1, description="Channel plan")
    dwell_ms: int = Field(default=250, ge=50, le=10_000, description="Time on each channel of the plan")
    min_rssi_dbm: int = Field(default=-95, ge=-100, le=-20, description="Frames weaker than this are not sent")
    output: Literal["udp", "serial"] = Field(description="How lines reach the gateway")
    gateway: str | None = Field(default=None, description="host:port of the gateway's UDP listener (output=udp)")
    baudrate: int = Field(default=115200, description="Serial line speed (output=serial)")
    time_sync: Literal["ntp", "none"] = Field(
        default="ntp", description="ntp: lines carry ts; none: the gateway stamps the receive time"
    )

    @model_validator(mode="after")
    def _output_settings(self) -> Self:
        if self.output == "udp" and not self.gateway:
            raise ValueError("output = 'udp' needs 'gateway' (host:port)")
        for channel in self.channels:
            if not 1 <= channel <= 14:
                raise ValueError(f"channel {channel}: ESP32 nodes sniff 2.4 GHz channels 1-14")
        return self
