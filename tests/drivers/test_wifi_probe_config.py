"""Sniffer configs: each source needs its settings, and every shipped sniffer-node settings file validates."""

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from drivers.wifi_probe.config import SnifferNodeSettings, WifiProbeConfig

NODE_FILES = sorted((Path(__file__).resolve().parents[2] / "firmware_configs" / "sniffer_nodes").glob("*.toml"))


@pytest.mark.parametrize("path", NODE_FILES, ids=[p.name for p in NODE_FILES])
def test_sniffer_nodes__every_shipped_settings_file_validates(path: Path) -> None:
    SnifferNodeSettings.model_validate(tomllib.loads(path.read_text()))


def test_sniffer_nodes__files_exist() -> None:
    assert NODE_FILES


@pytest.mark.parametrize(("source", "missing"), [("monitor", "interface"), ("pcap", "pcap"), ("udp", "listen"),
                                                  ("serial", "port")])
def test_config__each_source_names_the_setting_it_needs(source: str, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"needs '{missing}'"):
        WifiProbeConfig.model_validate({"type": "wifi_probe", "name": "sn-1", "source": source})


def test_config__bad_udp_listen_and_channels_are_rejected() -> None:
    with pytest.raises(ValidationError, match="host:port"):
        WifiProbeConfig.model_validate({"type": "wifi_probe", "name": "s", "source": "udp", "listen": "5555"})
    with pytest.raises(ValidationError, match="not a WiFi channel"):
        WifiProbeConfig.model_validate({"type": "wifi_probe", "name": "s", "source": "monitor",
                                        "interface": "wlan1", "channels": [15]})
    with pytest.raises(ValidationError, match="needs 'gateway'"):
        SnifferNodeSettings.model_validate({"node": "n", "output": "udp"})
