"""Where probe frames come from: a pcap/pcapng replay, a monitor-mode interface, or a sniffer node (UDP, serial).

Each source opens, reads a batch of raw records with their event time, and closes; the driver turns records into
sightings. Library errors are translated into ``DeviceUnavailable`` here, at the boundary.
"""

import contextlib
import errno
import mmap
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from drivers.wifi_probe.config import WifiProbeConfig
from drivers.wifi_probe.pcap import LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP, PcapError, iter_pcap
from edge.errors import DeviceUnavailable

ARPHRD_IEEE80211_RADIOTAP = 803
READ_BATCH = 512
READ_TIMEOUT_S = 0.2


class Record(NamedTuple):
    """One raw record: event time, what it is (a linktype, or NODE_LINE for sniffer-node JSON) and its bytes."""

    ts: float
    kind: int
    data: bytes | memoryview


NODE_LINE = -1


class Source(Protocol):
    """A supplier of raw records."""

    def open(self) -> None:
        """Open; raise ``DeviceUnavailable`` with a clear reason when impossible."""

    def read(self, stop: threading.Event) -> list[Record]:
        """Records available now (waiting at most a fraction of a second); raise ``DeviceUnavailable`` if gone."""

    def close(self) -> None:
        """Release; never raises."""


class PcapSource:
    """Replays a pcap/pcapng file, as fast as possible or paced by ``replay_speed`` against the capture times."""

    def __init__(self, path: Path, speed: float) -> None:
        self._path = path
        self._speed = speed
        self._map: mmap.mmap | None = None
        self._records: Iterator[tuple[float, int, memoryview]] | None = None
        self._first_ts: float | None = None
        self._started = 0.0
        self._pending: Record | None = None
        self.finished = False

    def open(self) -> None:
        try:
            with self._path.open("rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise DeviceUnavailable(f"cannot read capture {self._path}: {err}") from err
        try:
            self._records = iter_pcap(memoryview(self._map))
        except PcapError as err:
            raise DeviceUnavailable(f"{self._path} is not a pcap/pcapng file: {err}") from err

    def read(self, stop: threading.Event) -> list[Record]:
        if self._records is None or self.finished:
            stop.wait(READ_TIMEOUT_S)
            return []
        batch: list[Record] = []
        try:
            while len(batch) < READ_BATCH:
                record = self._pending or self._next()
                self._pending = None
                if record is None:
                    self.finished = True
                    break
                if self._speed > 0:
                    delay = self._due(record.ts) - time.monotonic()
                    if delay > 0 and (batch or stop.wait(min(delay, READ_TIMEOUT_S)) or delay > READ_TIMEOUT_S):
                        self._pending = record  # not due yet: hand it out on a later read
                        break
                batch.append(record)
        except PcapError as err:
            raise DeviceUnavailable(f"{self._path}: {err}") from err
        return batch

    def _next(self) -> Record | None:
        assert self._records is not None
        item = next(self._records, None)
        return None if item is None else Record(*item)

    def _due(self, ts: float) -> float:
        if self._first_ts is None:
            self._first_ts, self._started = ts, time.monotonic()
        return self._started + (ts - self._first_ts) / self._speed

    def close(self) -> None:
        self._records = None
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a memoryview still alive in a record keeps the map open
                self._map.close()
            self._map = None


class MonitorSource:
    """Live capture on a monitor-mode interface through scapy's capture socket, with our parser on the raw bytes."""

    def __init__(self, interface: str, channels: list[int], dwell_s: float) -> None:
        self._interface = interface
        self._channels = channels
        self._dwell_s = dwell_s
        self._socket: Any = None  # scapy's L2ListenSocket (untyped)
        self._channel_index = 0
        self._next_hop = 0.0
        self.channel: int | None = None

    def open(self) -> None:
        type_file = Path("/sys/class/net") / self._interface / "type"
        if not type_file.parent.exists():
            raise DeviceUnavailable(f"interface {self._interface} does not exist (plugged in? name changed?)")
        try:
            link_type = int(type_file.read_text().strip())
        except (OSError, ValueError) as err:
            raise DeviceUnavailable(f"cannot read the link type of {self._interface}: {err}") from err
        if link_type != ARPHRD_IEEE80211_RADIOTAP:
            raise DeviceUnavailable(f"interface {self._interface} is not in monitor mode (link type {link_type}, "
                                    f"want {ARPHRD_IEEE80211_RADIOTAP}); e.g. `iw dev {self._interface} set monitor "
                                    "none` while it is down")
        from scapy.config import conf  # imported here: scapy is slow to import and only live capture needs it

        try:
            self._socket = conf.L2listen(iface=self._interface)
        except PermissionError as err:
            raise DeviceUnavailable(f"no permission to capture on {self._interface}: the process needs CAP_NET_RAW "
                                    "(the systemd unit grants it; or run as root)") from err
        except OSError as err:
            raise DeviceUnavailable(f"cannot capture on {self._interface}: {err}") from err
        self._hop(force=True)

    def _hop(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (len(self._channels) == 1 or now < self._next_hop):
            return
        if not force:
            self._channel_index = (self._channel_index + 1) % len(self._channels)
        self._next_hop = now + self._dwell_s
        channel = self._channels[self._channel_index]
        iw = shutil.which("iw") or "/usr/sbin/iw"
        result = subprocess.run([iw, "dev", self._interface, "set", "channel", str(channel)], capture_output=True,
                                text=True, timeout=5, check=False)
        if result.returncode != 0:
            raise DeviceUnavailable(f"cannot set {self._interface} to channel {channel}: {result.stderr.strip()} "
                                    "(needs CAP_NET_ADMIN)")
        self.channel = channel

    def read(self, stop: threading.Event) -> list[Record]:
        sock = self._socket
        assert sock is not None
        self._hop()
        batch: list[Record] = []
        try:
            ready, _, _ = select.select([sock], [], [], READ_TIMEOUT_S)
            while ready and len(batch) < READ_BATCH:
                # recv_raw hands over the bytes without dissecting them: our parser is ~1000× faster than scapy's.
                _cls, data, ts = sock.recv_raw()
                if data:
                    batch.append(Record(float(ts) if ts else time.time(), LINKTYPE_RADIOTAP, data))
                ready, _, _ = select.select([sock], [], [], 0)
        except OSError as err:
            if err.errno == errno.ENETDOWN:
                raise DeviceUnavailable(f"interface {self._interface} went down") from err
            raise DeviceUnavailable(f"capture on {self._interface} failed: {err}") from err
        return batch

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class UdpNodeSource:
    """JSON lines from sniffer nodes over UDP (one datagram may hold several lines)."""

    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self._address = (host, int(port))
        self._socket: socket.socket | None = None

    def open(self) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self._address)
            sock.settimeout(READ_TIMEOUT_S)
        except OSError as err:
            raise DeviceUnavailable(f"cannot listen on udp {self._address[0]}:{self._address[1]}: {err}") from err
        self._socket = sock

    def read(self, stop: threading.Event) -> list[Record]:
        sock = self._socket
        assert sock is not None
        batch: list[Record] = []
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return batch
        except OSError as err:
            raise DeviceUnavailable(f"udp receive failed: {err}") from err
        now = time.time()
        batch.extend(Record(now, NODE_LINE, line) for line in data.splitlines() if line.strip())
        return batch

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


class SerialNodeSource:
    """JSON lines from a sniffer node on a serial port or pyserial URL."""

    def __init__(self, port: str, baudrate: int) -> None:
        self._url = port
        self._baudrate = baudrate
        self._port: object | None = None
        self._partial = b""

    def open(self) -> None:
        import serial

        try:
            self._port = serial.serial_for_url(self._url, baudrate=self._baudrate, timeout=READ_TIMEOUT_S)
        except (serial.SerialException, OSError, ValueError) as err:
            raise DeviceUnavailable(f"cannot open {self._url}: {err}") from err
        self._partial = b""

    def read(self, stop: threading.Event) -> list[Record]:
        import serial

        port = self._port
        assert port is not None
        try:
            data = port.read(1)  # type: ignore[attr-defined]
            waiting = getattr(port, "in_waiting", 0)
            if data and waiting:
                data += port.read(min(waiting, 65536))  # type: ignore[attr-defined]
        except (serial.SerialException, OSError) as err:
            raise DeviceUnavailable(f"{self._url} vanished: {err}") from err
        if not data:
            return []
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-4096:]  # an unterminated tail waits for its newline, bounded
        now = time.time()
        return [Record(now, NODE_LINE, line) for line in lines if line.strip()]

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()  # type: ignore[attr-defined]


def make_source(config: WifiProbeConfig) -> Source:
    """The source a sniffer's config asks for."""
    if config.source == "pcap":
        assert config.pcap is not None
        return PcapSource(config.pcap, config.replay_speed)
    if config.source == "monitor":
        assert config.interface is not None
        return MonitorSource(config.interface, config.channels, config.dwell_s)
    if config.source == "udp":
        assert config.listen is not None
        return UdpNodeSource(config.listen)
    assert config.port is not None
    return SerialNodeSource(config.port, config.baudrate)


SUPPORTED_LINKTYPES = (LINKTYPE_RADIOTAP, LINKTYPE_IEEE802_11)
