"""``edge doctor``: each check's verdict, and a non-zero exit when a check fails."""

import json
import subprocess
import sys
from pathlib import Path


def _doctor(config: Path) -> tuple[int, dict[str, object]]:
    result = subprocess.run([sys.executable, "-m", "edge", "doctor", "--config", str(config), "--json"],
                            capture_output=True, text=True, check=False)
    return result.returncode, json.loads(result.stdout)


def _config(tmp_path: Path, port: Path, floor_mb: int = 0) -> Path:
    config = tmp_path / "store.toml"
    config.write_text(f"""store_id = "s1"
[storage]
path = "{tmp_path / 'db' / 'edge.db'}"
min_free_disk_mb = {floor_mb}
[[devices]]
type = "barcode"
name = "till-1"
port = "{port}"
""")
    return config


def test_doctor__healthy_install_passes(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    port = tmp_path / "ttyACM0"
    port.write_text("")  # stands in for a present, accessible device node
    code, report = _doctor(_config(tmp_path, port))
    checks = {c["name"]: c["result"] for c in report["checks"]}  # type: ignore[union-attr]
    assert code == 0 and report["ok"] is True
    assert checks["config"] == checks["database"] == checks["device till-1"] == checks["disk"] == "ok"
    assert checks["clock"] in {"ok", "warn"} and checks["capture"] in {"ok", "warn"}


def test_doctor__missing_device_db_dir_and_low_disk_fail(tmp_path: Path) -> None:
    code, report = _doctor(_config(tmp_path, tmp_path / "unplugged", floor_mb=10**9))
    failed = {c["name"] for c in report["checks"] if c["result"] == "fail"}  # type: ignore[union-attr]
    assert code == 1 and report["ok"] is False
    assert {"device till-1", "database"} <= failed


def test_doctor__invalid_config_fails_with_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('store_id = "s1"\nnope = 1\n')
    code, report = _doctor(config)
    assert code == 1
    assert report["checks"][0]["result"] == "fail" and "nope: unknown key" in report["checks"][0]["detail"]  # type: ignore[index]
