"""Sniffer-node feed: JSON lines as an ESP32 node sends them, streamed over UDP or written to a pty."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import tty
from collections.abc import Iterable, Iterator
from pathlib import Path

from simulators.wifi.devices import Capture


def node_lines(frames_for_sniffer: Iterable[Capture], node_name: str) -> Iterator[bytes]:
    """One JSON line per captured frame: mac, rssi, ch, seq, ts, fp (16 hex), ssid_len, node."""
    for cap in frames_for_sniffer:
        record = {"mac": cap.mac, "rssi": cap.rssi, "ch": cap.channel, "seq": cap.seq, "ts": round(cap.ts, 6),
                  "fp": cap.fp, "ssid_len": cap.ssid_len, "node": node_name}
        yield json.dumps(record, separators=(",", ":")).encode() + b"\n"


def paced(lines: Iterable[bytes], *, realtime: bool = False, speed: float = 1.0, rate: float | None = None,
          stop: threading.Event | None = None) -> Iterator[bytes]:
    """Yield lines as fast as possible, at their ``ts`` spacing divided by ``speed``, or at ``rate`` lines/s."""
    stop = stop or threading.Event()
    t0_wall = time.monotonic()
    t0_event: float | None = None
    for index, line in enumerate(lines):
        if stop.is_set():
            return
        due: float | None = None
        if realtime:
            ts = float(json.loads(line)["ts"])
            t0_event = ts if t0_event is None else t0_event
            due = t0_wall + (ts - t0_event) / speed
        elif rate:
            due = t0_wall + index / rate
        if due is not None:
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
        yield line


def stream_udp(lines: Iterable[bytes], host: str, port: int, *, realtime: bool = False, speed: float = 1.0,
               rate: float | None = None, stop: threading.Event | None = None) -> int:
    """Send each line as one UDP datagram to (host, port); returns the number sent."""
    sent = 0
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in paced(lines, realtime=realtime, speed=speed, rate=rate, stop=stop):
            sock.sendto(line, (host, port))
            sent += 1
    return sent


class PtyNode:
    """A sniffer node on a serial line, simulated with a pty pair behind an optional by-id style symlink."""

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self._master: int | None = None
        self._slave: int | None = None
        self.slave_path: str | None = None

    def start(self) -> str:
        """Open the pty pair (raw mode), point ``link`` at it, and return the slave device path."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link is not None:
            if self.link.is_symlink():
                self.link.unlink()
            self.link.symlink_to(self.slave_path)
        return self.slave_path

    def write(self, lines: Iterable[bytes], *, realtime: bool = False, speed: float = 1.0, rate: float | None = None,
              stop: threading.Event | None = None) -> int:
        """Write lines to the serial side, paced like ``stream_udp``; returns the number written."""
        if self._master is None:
            raise RuntimeError("PtyNode is not started")
        written = 0
        for line in paced(lines, realtime=realtime, speed=speed, rate=rate, stop=stop):
            view = memoryview(line)
            while view:
                view = view[os.write(self._master, view):]
            written += 1
        return written

    def stop(self) -> None:
        """Close the pty and remove the link; safe to call more than once."""
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
