"""Config validation: shipped files load, problems name their key path, secrets, and `edge config check`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.config.base import SecretRef
from edge.config.loader import load_config, parse_config
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
STORE_CONFIGS = sorted((REPO / "firmware_configs" / "stores").glob("*.toml"))
EDGE = Path(sys.executable).parent / "edge"

HEADER = 'store_id = "cn-sh-0042"\n'
SCANNER = '[[devices]]\ntype = "barcode"\nname = "{name}"\nport = "/dev/ttyACM0"\n'


def problems_of(text: str) -> list[str]:
    """The problems ``parse_config`` reports for ``text`` (the test fails when it is accepted)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def test_store_configs__glob_finds_the_shipped_configs() -> None:
    assert STORE_CONFIGS, "no firmware_configs/stores/*.toml: the parametrised test below checks nothing"


@pytest.mark.parametrize("path", STORE_CONFIGS, ids=lambda path: path.name)
def test_store_configs__every_shipped_file_validates(path: Path) -> None:
    config = load_config(path)

    assert config.store_id
    assert config.devices, f"{path.name} configures no device"


def test_config__minimal_file_gets_documented_defaults() -> None:
    config = parse_config(HEADER + SCANNER.format(name="till-1"))

    assert config.timezone == "UTC"
    assert config.storage.retention.days_for("scans") == 7
    assert config.storage.retention.days_for("agg_scans") == 90
    assert [device.name for device in config.enabled_devices()] == ["till-1"]


def test_config__unknown_keys_are_reported_with_their_key_paths_all_at_once() -> None:
    text = (
        HEADER
        + "foo = 1\n"
        + "[storage.retention]\nfoo = 2\n"
        + SCANNER.format(name="till-1")
        + "baud = 9600\n"
    )

    assert sorted(problems_of(text)) == sorted([
        "foo: unknown key",
        "storage.retention.foo: unknown key",
        "devices[0].baud: unknown key",
    ])


def test_config__invalid_value_names_the_device_index_and_key() -> None:
    text = HEADER + SCANNER.format(name="till-1") + SCANNER.format(name="aisle-3") + "baudrate = 12345\n"

    [problem] = problems_of(text)

    assert problem.startswith("devices[1].baudrate: ")
    assert "12345" in problem


def test_config__unknown_device_type_names_the_type_key_and_the_known_types() -> None:
    text = HEADER + SCANNER.format(name="till-1") + '[[devices]]\ntype = "rfid"\nname = "door"\n'

    [problem] = problems_of(text)

    assert problem.startswith("devices[1].type: unknown device type")
    assert "barcode" in problem


def test_config__invalid_toml_reports_the_line_number() -> None:
    text = HEADER + "\n[storage]\nmin_free_disk_mb = = 3\n"

    [problem] = problems_of(text)

    assert "invalid TOML" in problem
    assert "line 4" in problem


def test_config__duplicate_device_names_are_rejected_naming_the_name() -> None:
    text = HEADER + SCANNER.format(name="till-1") + SCANNER.format(name="till-1")

    [problem] = problems_of(text)

    assert "device names must be unique" in problem
    assert "till-1" in problem


ZONE = '[[floor_plan.zones]]\nname = "{name}"\npolygon = {polygon}\n'
FLOOR = "[floor_plan]\nwidth_m = 10.0\ndepth_m = 8.0\n"


def test_config__duplicate_zone_names_are_rejected_under_floor_plan() -> None:
    square = "[[0, 0], [2, 0], [2, 2], [0, 2]]"
    text = HEADER + FLOOR + ZONE.format(name="entrance", polygon=square) * 2

    [problem] = problems_of(text)

    assert problem.startswith("floor_plan: ")
    assert "zone names must be unique" in problem
    assert "entrance" in problem


def test_config__zone_point_outside_the_floor_is_rejected_naming_zone_and_point() -> None:
    text = HEADER + FLOOR + ZONE.format(name="fresh", polygon="[[0, 0], [10, 0], [10, 8.5]]")

    [problem] = problems_of(text)

    assert problem.startswith("floor_plan: ")
    assert "'fresh'" in problem
    assert "(10.0, 8.5)" in problem
    assert "outside the floor" in problem


def test_config__zone_on_the_floor_edge_is_accepted() -> None:
    whole_floor = "[[0, 0], [10, 0], [10, 8], [0, 8]]"
    config = parse_config(HEADER + FLOOR + ZONE.format(name="all", polygon=whole_floor))

    assert [zone.name for zone in config.floor_plan.zones] == ["all"]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd"])
def test_config__unknown_timezone_is_rejected_at_timezone(zone: str) -> None:
    [problem] = problems_of(HEADER + f'timezone = "{zone}"\n')

    assert problem.startswith("timezone: ")
    assert "unknown time zone" in problem


def test_config__known_timezone_is_accepted() -> None:
    assert parse_config(HEADER + 'timezone = "Asia/Shanghai"\n').timezone == "Asia/Shanghai"


# -- secrets -----------------------------------------------------------------------------------------------


def test_secret__credential_is_read_from_credentials_directory(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt_password").write_text("s3cret\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = parse_config(HEADER + '[sync]\npassword = { credential = "mqtt_password" }\n')

    assert config.sync.password is not None
    assert config.sync.password.path() == tmp_path / "mqtt_password"
    assert config.sync.password.read() == "s3cret"


def test_secret__file_is_read_and_trailing_newline_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text("hunter2\r\n", encoding="utf-8")

    assert SecretRef(file=secret).read() == "hunter2"


@pytest.mark.parametrize("fields", ['{ credential = "a", file = "/run/a" }', "{}"], ids=["both", "neither"])
def test_secret__exactly_one_source_is_required_and_reported_at_its_path(fields: str) -> None:
    [problem] = problems_of(HEADER + f"[sync]\npassword = {fields}\n")

    assert problem.startswith("sync.password: ")
    assert "exactly one of 'credential' or 'file'" in problem


def test_secret__both_sources_rejected_by_the_model_itself() -> None:
    with pytest.raises(ValidationError):
        SecretRef(credential="a", file=Path("/run/a"))


def test_secret__credential_without_credentials_directory_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)

    with pytest.raises(ConfigError, match=r"CREDENTIALS_DIRECTORY is not set"):
        SecretRef(credential="mqtt_password").read()


def test_secret__credentials_directory_that_does_not_exist_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "gone"))

    with pytest.raises(ConfigError, match=r"mqtt_password"):
        SecretRef(credential="mqtt_password").read()


def test_secret__missing_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"

    with pytest.raises(ConfigError, match=r"nope\.txt"):
        SecretRef(file=missing).read()


# -- edge config check ---------------------------------------------------------------------------------------


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    assert EDGE.exists(), f"console script not installed at {EDGE}"
    return subprocess.run([str(EDGE), "config", "check", *args], capture_output=True, text=True, timeout=60,
                          check=False)


BAD_FILE = (
    HEADER
    + 'timezone = "Nowhere/Land"\n'
    + SCANNER.format(name="till-1")
    + "baud = 9600\n"
    + SCANNER.format(name="aisle-3")
    + "baudrate = 12345\n"
)
BAD_PROBLEM_PREFIXES = ("timezone: ", "devices[0].baud: unknown key", "devices[1].baudrate: ")


def test_cli_config_check__bad_file_exits_2_and_prints_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(BAD_FILE, encoding="utf-8")

    result = run_check(str(path))

    assert result.returncode == 2, result.stderr
    assert "3 problem(s)" in result.stderr
    for prefix in BAD_PROBLEM_PREFIXES:
        assert f"  {prefix}" in result.stderr, f"{prefix!r} missing from:\n{result.stderr}"


def test_cli_config_check__json_lists_problems_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(BAD_FILE, encoding="utf-8")

    result = run_check(str(path), "--json")

    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == 3
    for prefix in BAD_PROBLEM_PREFIXES:
        assert any(problem.startswith(prefix) for problem in report["problems"]), report["problems"]


def test_cli_config_check__good_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(HEADER + SCANNER.format(name="till-1"), encoding="utf-8")

    result = run_check(str(path), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["store_id"] == "cn-sh-0042"
    assert report["devices"] == ["till-1"]


def test_cli_config_check__missing_file_exits_2(tmp_path: Path) -> None:
    result = run_check(str(tmp_path / "absent.toml"))

    assert result.returncode == 2
    assert "cannot read config" in result.stderr


def test_secret__the_units_not_installed_placeholder_is_refused_by_name(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt_password").write_text("not-installed")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match="'mqtt_password' is not installed"):
        SecretRef(credential="mqtt_password").read()
