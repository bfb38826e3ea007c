"""Barcode scanner config: terminators, baud rates, bounds, RCN layout patterns and unknown keys."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from drivers.barcode import KEY
from drivers.barcode.config import BarcodeConfig, RcnLayout


def config(**overrides: Any) -> BarcodeConfig:
    base = {"type": "barcode", "name": "lane-1", "port": "/dev/ttyACM0"}
    return BarcodeConfig.model_validate(base | overrides)


def test_config__defaults_are_115200_8n1_cr() -> None:
    cfg = config()
    assert (cfg.type, cfg.baudrate, cfg.bytesize, cfg.parity, cfg.stopbits) == (KEY, 115200, 8, "N", 1)
    assert cfg.terminator_bytes() == b"\r"
    assert (cfg.max_frame_bytes, cfg.idle_timeout_s, cfg.reconnect_max_s) == (512, 2.0, 2.0)
    assert cfg.rcn_layouts == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("CR", b"\r"), ("LF", b"\n"), ("CRLF", b"\r\n"), ("crlf", b"\r\n"), ("0x03", b"\x03"), ("0x0A", b"\n")],
)
def test_config__terminator_names_and_hex_bytes(text: str, expected: bytes) -> None:
    assert config(terminator=text).terminator_bytes() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TAB", "is not CR, LF, CRLF or one byte in hex"),
        ("0x3", "is not CR, LF, CRLF or one byte in hex"),
        ("0x0304", "is not CR, LF, CRLF or one byte in hex"),
        ("", "is not CR, LF, CRLF or one byte in hex"),
        ("0x1d", "GS1 field separator"),
        ("0x41", "printable character"),
    ],
)
def test_config__bad_terminator_says_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(terminator=text)


@pytest.mark.parametrize(
    "port", ["/dev/ttyACM0", "/dev/serial/by-id/usb-Honeywell_1902-if00", "socket://10.0.0.5:7000"]
)
def test_config__port_accepts_paths_and_pyserial_urls(port: str) -> None:
    assert config(port=port).port == port


def test_config__standard_baudrate_accepted_and_odd_rate_rejected() -> None:
    assert config(baudrate=9600).baudrate == 9600
    with pytest.raises(ValidationError, match="not a standard rate"):
        config(baudrate=12345)


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_frame_bytes": 15},
        {"max_frame_bytes": 8193},
        {"reconnect_max_s": 0},
        {"reconnect_max_s": 61},
        {"idle_timeout_s": 0},
        {"parity": "M"},
        {"bytesize": 6},
        {"stopbits": 3},
        {"type": "camera"},
        {"name": "Lane 1"},
    ],
)
def test_config__out_of_range_values_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config(**overrides)


def test_config__unknown_key_rejected() -> None:
    with pytest.raises(ValidationError, match="baud_rate"):
        config(baud_rate=9600)


def test_config__unknown_key_in_layout_rejected() -> None:
    with pytest.raises(ValidationError, match="decimals"):
        config(rcn_layouts=[{"name": "cn", "pattern": "2IIIIIIPPPPPC", "decimals": 2}])


def test_config__china_example_layouts_validate() -> None:
    cfg = config(
        rcn_layouts=[
            {"name": "cn-13-price", "pattern": "2IIIIIIPPPPPC"},
            {"name": "cn-18-scale", "pattern": "26IIIIIPPPPPWWWWWC", "weight_decimals": 3},
        ]
    )
    assert [layout.prefix for layout in cfg.rcn_layouts] == ["2", "26"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("2IIIIIIPPPPPZ", "unexpected characters 'Z'"),
        ("2iiiiiipppppC", "unexpected characters"),
        ("2IIPPC", "length 6 is outside 8..18"),
        ("2IIIIIIIIPPPPPPPPPC", "length 19 is outside 8..18"),
        ("IIIIIIIPPPPPC", "must start with at least one literal digit"),
        ("2PPPPPPPPPPPC", "needs at least one item digit I"),
        ("2IIIIIIXXXXXC", "needs at least one price digit P or weight digit W"),
        ("2IIIIIIPPPPPP", "exactly one check digit C, as the last"),
        ("2IIIIICPPPPPC", "exactly one check digit C, as the last"),
        ("2IIIIIIPPPPCX", "exactly one check digit C, as the last"),
    ],
)
def test_rcn_layout__bad_pattern_error_names_the_problem(pattern: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RcnLayout(name="bad", pattern=pattern)


def test_config__repeated_layout_names_rejected() -> None:
    layout = {"name": "cn", "pattern": "2IIIIIIPPPPPC"}
    with pytest.raises(ValidationError, match="repeated: cn"):
        config(rcn_layouts=[layout, layout])


@pytest.mark.parametrize("model", [BarcodeConfig, RcnLayout])
def test_config__every_field_has_a_description(model: type[BaseModel]) -> None:
    missing = [name for name, field in model.model_fields.items() if not field.description]
    assert missing == []
