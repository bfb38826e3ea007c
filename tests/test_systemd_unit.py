"""The systemd unit, sysusers and tmpfiles files: required and forbidden directives, systemd's own checks."""

import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from edge.config.base import NOT_INSTALLED

SYSTEMD_DIR = Path(__file__).resolve().parents[1] / "systemd"
UNIT = SYSTEMD_DIR / "store-edge.service"
SYSUSERS = SYSTEMD_DIR / "sysusers.conf"
TMPFILES = SYSTEMD_DIR / "store-edge.tmpfiles"

Directives = dict[tuple[str, str], list[str]]


def parse_unit(text: str) -> Directives:
    """Map (section, key) to all its values in order; comments skipped, continuation lines joined."""
    directives: Directives = defaultdict(list)
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line in [{section}]: {raw!r}"
        directives[(section, key.strip())].append(value.strip())
    return dict(directives)


@pytest.fixture(scope="module")
def unit() -> Directives:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def only(unit: Directives, section: str, key: str) -> str:
    """The single value of a directive that must be given exactly once."""
    values = unit.get((section, key), [])
    assert len(values) == 1, f"[{section}] {key}= expected once, found {values}"
    return values[0]


REQUIRED_SERVICE = {
    "Type": "notify",
    "NotifyAccess": "main",
    "ExecStart": "/opt/store-edge/bin/edge run --config /etc/store-edge/store.toml",
    "WatchdogSec": "30",
    "Restart": "on-failure",
    "RestartSec": "5",
    "TimeoutStopSec": "15",
    "User": "store-edge",
    "Group": "store-edge",
    "StateDirectory": "store-edge",
    "StateDirectoryMode": "0750",
    "ConfigurationDirectory": "store-edge",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "MemoryMax": "512M",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "SystemCallArchitectures": "native",
}


@pytest.mark.parametrize(("key", "expected"), sorted(REQUIRED_SERVICE.items()))
def test_unit__service_directive_has_required_value(unit: Directives, key: str, expected: str) -> None:
    assert only(unit, "Service", key) == expected


def test_unit__is_wanted_by_multi_user_target(unit: Directives) -> None:
    assert only(unit, "Install", "WantedBy") == "multi-user.target"


def test_unit__loads_both_credentials_from_etc(unit: Directives) -> None:
    assert sorted(unit.get(("Service", "LoadCredential"), [])) == [
        "mqtt_password:/etc/store-edge/credentials/mqtt_password",
        "tls_client_key:/etc/store-edge/credentials/client.key",
    ]


def test_unit__every_credential_has_the_not_installed_placeholder(unit: Directives) -> None:
    # A store that does not sync yet has no credential files; the daemon refuses the placeholder as a secret.
    loaded = sorted(value.partition(":")[0] for value in unit.get(("Service", "LoadCredential"), []))
    fallbacks = unit.get(("Service", "SetCredential"), [])
    assert sorted(value.partition(":")[0] for value in fallbacks) == loaded
    assert {value.partition(":")[2] for value in fallbacks} == {NOT_INSTALLED}


def test_unit__gets_serial_and_video_groups(unit: Directives) -> None:
    assert set(only(unit, "Service", "SupplementaryGroups").split()) == {"dialout", "video"}


def test_unit__capabilities_are_exactly_net_raw_and_net_admin(unit: Directives) -> None:
    wanted = {"CAP_NET_RAW", "CAP_NET_ADMIN"}
    assert set(only(unit, "Service", "AmbientCapabilities").split()) == wanted
    assert set(only(unit, "Service", "CapabilityBoundingSet").split()) == wanted


def test_unit__address_families_allow_mqtt_netlink_and_packet_capture(unit: Directives) -> None:
    assert set(only(unit, "Service", "RestrictAddressFamilies").split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
        "AF_PACKET",
    }


def test_unit__python_output_is_unbuffered(unit: Directives) -> None:
    assert "PYTHONUNBUFFERED=1" in unit.get(("Service", "Environment"), [])


@pytest.mark.parametrize(
    "key", ["PrivateDevices", "ProtectClock", "DevicePolicy", "DeviceAllow", "DynamicUser"]
)
def test_unit__sets_nothing_that_hides_serial_ports_or_cameras(unit: Directives, key: str) -> None:
    # PrivateDevices= hides /dev/ttyACM* and /dev/video*; ProtectClock= implies a DeviceAllow= allow-list that
    # does the same; DynamicUser= would break group-readable state for the technician CLI.
    assert not [section for section, name in unit if name == key], f"{key}= must not be set"


def test_unit__has_no_directive_outside_known_sections(unit: Directives) -> None:
    assert {section for section, _ in unit} <= {"Unit", "Service", "Install"}


def test_parse_unit__keeps_duplicates_and_skips_comments() -> None:
    parsed = parse_unit("[Service]\n# PrivateDevices=yes\nA=1\nA=2\nB=x \\\n  y\n")
    assert parsed == {("Service", "A"): ["1", "2"], ("Service", "B"): ["x y"]}


# Messages systemd-analyze may print only because this machine is not the store PC. Anything else fails.
ALLOWED_VERIFY_MESSAGES = (
    # the store-edge user does not exist here
    re.compile(r"(?i)(resolve|unknown|no such|not found|does not exist).*\buser\b.*'?store-edge'?(\W|$)"),
    re.compile(r"(?i)\buser\b.*'?store-edge'?.*(not found|no such|unknown|does not exist)"),
    # the credential files do not exist here
    re.compile(r"/etc/store-edge/credentials/\S+.*(No such file|not found|does not exist)"),
)


def _executable_stand_in() -> str:
    """An executable that exists here, to stand in for /opt/store-edge/bin/edge."""
    venv_edge = Path(sys.executable).parent / "edge"
    return str(venv_edge) if os.access(venv_edge, os.X_OK) else "/bin/true"


def test_unit__passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd); unit only checked statically")
    text = UNIT.read_text(encoding="utf-8")
    rewritten, count = re.subn(
        r"(?m)^ExecStart=/opt/store-edge/bin/edge ", f"ExecStart={_executable_stand_in()} ", text
    )
    assert count == 1
    copy = tmp_path / UNIT.name
    copy.write_text(rewritten, encoding="utf-8")

    help_text = subprocess.run([analyze, "--help"], capture_output=True, text=True, check=False).stdout
    command = [analyze, "verify", "--man=no"]
    if "--recursive-errors" in help_text:
        # Judge this unit only, not whatever units the host happens to have for After=/WantedBy= targets.
        command.append("--recursive-errors=no")
    result = subprocess.run([*command, str(copy)], capture_output=True, text=True, check=False, timeout=60)

    output = (result.stdout + result.stderr).strip()
    unexpected = [
        line
        for line in output.splitlines()
        if line.strip() and not any(pattern.search(line) for pattern in ALLOWED_VERIFY_MESSAGES)
    ]
    print(f"$ {' '.join(command)} {copy}\nexit {result.returncode}\n{output}")
    assert not unexpected, "systemd-analyze verify complained:\n" + "\n".join(unexpected)
    assert result.returncode == 0 or output, (
        f"systemd-analyze verify failed silently (exit {result.returncode})"
    )


def _sysusers_lines() -> list[list[str]]:
    lines = SYSUSERS.read_text(encoding="utf-8").splitlines()
    return [line.split(maxsplit=2) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_sysusers__creates_system_user_in_serial_and_video_groups() -> None:
    entries = _sysusers_lines()
    assert ["u", "store-edge", '- "StoreEdge gateway" /var/lib/store-edge'] in entries
    assert ["m", "store-edge", "dialout"] in entries
    assert ["m", "store-edge", "video"] in entries


def test_sysusers__is_accepted_by_systemd_sysusers(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers not installed (apt-get install systemd)")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n", encoding="utf-8")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n", encoding="utf-8")
    as_root = os.geteuid() == 0
    # Writing the files needs root (sysusers copies ownership); otherwise a dry run still parses everything.
    command = [sysusers, f"--root={tmp_path}", *([] if as_root else ["--dry-run"]), str(SYSUSERS)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Creating user 'store-edge' (StoreEdge gateway)" in output
    if as_root:
        passwd = (etc / "passwd").read_text(encoding="utf-8")
        assert re.search(r"(?m)^store-edge:x:\d+:\d+:StoreEdge gateway:/var/lib/store-edge:", passwd)
        group = (etc / "group").read_text(encoding="utf-8")
        assert re.search(r"(?m)^dialout:x:20:store-edge$", group)
        assert re.search(r"(?m)^video:x:44:store-edge$", group)


def test_tmpfiles__credentials_directory_is_root_only() -> None:
    lines = TMPFILES.read_text(encoding="utf-8").splitlines()
    entries = [line.split() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert ["d", "/etc/store-edge/credentials", "0700", "root", "root", "-"] in entries
    assert ["d", "/var/lib/store-edge", "0750", "store-edge", "store-edge", "-"] in entries
