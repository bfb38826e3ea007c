"""Camera benchmark: frames/s of decode + people counting (the driver's path) vs decode only, same 640x480 clip.

``value``: the camera driver's worker on a rendered clip — every frame decoded, frames at ``process_fps``
resized to ``process_width`` and counted (``CameraWorker``, exactly as the driver runs it), as frames of video
per second of wall time. ``baseline``: ``VideoCapture.read()`` of every frame of the same file, in the same run.
A ratio of 1 means counting costs nothing beyond decoding.
"""

import argparse
import json
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2

from drivers.camera.config import CameraConfig
from drivers.camera.driver import default_source
from drivers.camera.protocol import CounterParams
from drivers.camera.worker import CameraWorker, Finished
from simulators.camera import render, standard_scenarios

SECONDS = 60.0


def _clip(directory: Path) -> Path:
    scenario = next(s for s in standard_scenarios() if s.name == "topdown_entrance")
    scenario = replace(scenario, duration_s=SECONDS, lights_on_s=30.0)
    render(scenario, directory / "bench.avi")
    return directory / "bench.avi"


def _decode_only(path: Path) -> tuple[float, int]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = 0
    started = time.perf_counter()
    while capture.read()[0]:
        frames += 1
    elapsed = time.perf_counter() - started
    capture.release()
    return frames / elapsed, frames


def _pipeline(path: Path, config: CameraConfig) -> tuple[float, int, int]:
    worker = CameraWorker(config, CounterParams.from_config(config), default_source, 0.0)
    stop = threading.Event()
    started = time.perf_counter()
    worker.open()
    finished = None
    processed = 0
    while finished is None:
        for message in worker.step(stop):
            if isinstance(message, Finished):
                finished = message
            else:
                processed += 1
    elapsed = time.perf_counter() - started
    worker.close()
    return finished.decoded / elapsed, finished.decoded, processed


def run() -> dict[str, object]:
    """Render the clip, measure both sides (best of 2 each), return the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _clip(Path(tmp))
        config = CameraConfig.model_validate({
            "type": "camera", "name": "bench", "source": str(path), "person_size_px": [48, 30],
            "lines": [{"name": "door", "p1": [24, 240], "p2": [616, 240], "band_px": 22}], "run_in_process": False,
        })
        baseline, frames = max(_decode_only(path) for _ in range(2))
        value, decoded, processed = max(_pipeline(path, config) for _ in range(2))
    return {
        "name": "camera", "unit": "frames/s", "value": round(value, 1), "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 3), "frames": frames, "decoded": decoded, "processed": processed,
        "clip": f"640x480 MJPG, {SECONDS:g} s at 12 fps (topdown_entrance)",
        "processing": f"{config.process_fps:g} fps at {config.process_width} px (config defaults)",
    }


def main() -> None:
    """``python -m simulators.bench.camera [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="Print one JSON object")
    args = parser.parse_args()
    result = run()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
