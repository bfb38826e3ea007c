"""``edge wifi ...``: offline analysis of probe-request captures for site surveys and calibration."""

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from drivers.wifi_probe.driver import SightingMaker
from drivers.wifi_probe.pcap import PcapError, PcapStats, iter_pcap
from drivers.wifi_probe.protocol import ParseStats
from drivers.wifi_probe.sources import Record
from edge.analytics import PresenceEstimator, SnifferSite
from edge.config.models import WifiAnalytics
from edge.privacy import Hasher


@click.group()
def wifi() -> None:
    """WiFi probe sniffing: analyse captures offline."""


@wifi.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--window", "window_s", default=60, show_default=True, type=click.IntRange(10, 3600),
              help="Window length in seconds")
@click.option("--rssi-gate", "gate_dbm", default=-75, show_default=True, type=click.IntRange(-100, -20),
              help="Devices weaker than this (dBm) are outside")
@click.option("--persons-factor", default=1.0, show_default=True, type=click.FloatRange(0.01, 10),
              help="Calibration: persons per counted device")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table")
def analyze(file: Path, window_s: int, gate_dbm: int, persons_factor: float, as_json: bool) -> None:
    """Per-window frames, devices and persons estimate of a pcap/pcapng capture (no MAC is ever printed)."""
    settings = WifiAnalytics(window_s=window_s, rssi_gate_dbm=gate_dbm, persons_factor=persons_factor)
    estimator = PresenceEstimator(settings, {file.stem: SnifferSite(file.stem)})
    parse_stats, pcap_stats = ParseStats(), PcapStats()
    last_ts: float | None = None
    with tempfile.TemporaryDirectory(prefix="edge-wifi-") as scratch:
        # A throwaway salt: ids are comparable within this analysis only, and nothing links them to the store's.
        maker = SightingMaker(file.stem, Hasher(ZoneInfo("UTC"), "daily", Path(scratch) / "salt"), parse_stats)
        try:
            records = [Record(*item) for item in iter_pcap(file.read_bytes(), pcap_stats)]
        except PcapError as err:
            click.echo(f"error: {file}: {err}", err=True)
            sys.exit(2)
        sightings = maker.sightings(records)
    if sightings:
        estimator.feed(sightings)
        last_ts = max(s.ts for s in sightings)
    windows = estimator.close(last_ts + window_s) if last_ts is not None else []
    rows = [
            {"start": w.window_start, "end": w.window_end, "frames": w.frames, "devices": w.devices,
             "stable_devices": w.stable_devices, "randomized_clusters": w.randomized_clusters,
             "probe_rate": round(w.probe_rate, 3), "persons_estimate": round(w.persons_estimate, 2)}
            for w in windows
    ]
    totals = {"records": pcap_stats.records, "probe_requests": parse_stats.probes,
                   "not_probe": parse_stats.not_probe, "malformed": parse_stats.malformed,
                   "truncated": parse_stats.truncated + pcap_stats.truncated, "bad_fcs": parse_stats.bad_fcs}
    if as_json:
        click.echo(json.dumps({"file": str(file), "windows": rows, "totals": totals, "settings": {
            "window_s": window_s, "rssi_gate_dbm": gate_dbm, "persons_factor": persons_factor}}))
        return
    click.echo(f"{'window start (UTC)':<20} {'frames':>7} {'devices':>8} {'stable':>7} {'clusters':>9} {'persons':>8}")
    for w in rows:
        start = datetime.fromtimestamp(float(w["start"]), UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{start:<20} {w['frames']:>7} {w['devices']:>8} {w['stable_devices']:>7} "
                   f"{w['randomized_clusters']:>9} {w['persons_estimate']:>8}")
    click.echo("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
