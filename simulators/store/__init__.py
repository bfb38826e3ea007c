"""A whole simulated store day: one ground truth driving the WiFi, door-camera, till and ESL simulators."""

from simulators.store.camera import Clip, plan_clips, render_clips
from simulators.store.day import simulate_day
from simulators.store.generate import generate
from simulators.store.model import DoorEvent, ItemScan, Knobs, Party, StoreDay, Transaction
from simulators.store.site import DEFAULT_CONFIG, Site, load_site
from simulators.store.tills import AcceleratedClock, ScannerLike, play_tills, read_tills
from simulators.store.truth import build_truth
from simulators.store.wifi import ProbeDay, probe_day

__all__ = [
    "DEFAULT_CONFIG",
    "AcceleratedClock",
    "Clip",
    "DoorEvent",
    "ItemScan",
    "Knobs",
    "Party",
    "ProbeDay",
    "ScannerLike",
    "Site",
    "StoreDay",
    "Transaction",
    "build_truth",
    "generate",
    "load_site",
    "plan_clips",
    "play_tills",
    "probe_day",
    "read_tills",
    "render_clips",
    "simulate_day",
]
