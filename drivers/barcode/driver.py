"""Serial/USB-CDC barcode scanner driver: opens the port with pyserial, frames, decodes and emits scans."""

import logging
import time

import serial

from drivers.barcode.config import BarcodeConfig
from drivers.barcode.protocol import Framer, decode
from edge.driver import DriverContext, ReaderDriver
from edge.errors import DeviceUnavailable

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2
MAX_READ_BYTES = 4096


class BarcodeDriver(ReaderDriver):
    """One scanner on a serial port or pyserial URL (``/dev/serial/by-id/...``, ``rfc2217://``, ``socket://``)."""

    type_key = "barcode"

    def __init__(self, config: BarcodeConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx, reconnect_max_s=config.reconnect_max_s)
        self.cfg = config
        self._port: serial.SerialBase | None = None
        self._framer = Framer(config.terminator_bytes(), config.max_frame_bytes, config.idle_timeout_s)
        self._reported = (0, 0, 0)

    def describe(self) -> dict[str, str]:
        """Port and line settings."""
        cfg = self.cfg
        settings = f"{cfg.baudrate} {cfg.bytesize}{cfg.parity}{cfg.stopbits}"
        return {"port": cfg.port, "settings": settings, "terminator": cfg.terminator}

    def open(self) -> None:
        """Open the configured port (the stable path is re-resolved on every attempt)."""
        cfg = self.cfg
        try:
            port = serial.serial_for_url(
                cfg.port, do_not_open=True, baudrate=cfg.baudrate, bytesize=cfg.bytesize, parity=cfg.parity,
                stopbits=cfg.stopbits, timeout=READ_TIMEOUT_S,
            )
            if isinstance(port, serial.Serial):
                port.exclusive = True  # a second reader on the same scanner would steal half the scans
            port.open()
        except (serial.SerialException, OSError, ValueError) as err:
            raise DeviceUnavailable(f"cannot open {cfg.port}: {err}") from err
        self._framer.reset()
        self._port = port

    def read_once(self) -> None:
        """Read what the scanner sent within the read timeout and emit each complete frame as a scan."""
        port = self._port
        assert port is not None
        try:
            # Block up to the read timeout for the first byte, then take whatever else has arrived.
            data = port.read(1)
            waiting: int = getattr(port, "in_waiting", 0)
            if data and waiting:
                data += port.read(min(waiting, MAX_READ_BYTES))
        except (serial.SerialException, OSError) as err:
            raise DeviceUnavailable(f"{self.cfg.port} vanished: {err}") from err
        frames = self._framer.feed(data, time.time())
        self._sync_framer_counters()
        if not frames:
            return
        ts = self.ctx.clock()  # event time: the store's clock (accelerated in a simulated store day)
        for frame in frames:
            scan = decode(frame, device=self.cfg.name, ts=ts, rcn_layouts=self.cfg.rcn_layouts)
            if not scan.valid:
                self.ctx.count("invalid_scans")
            self.ctx.emit(scan, ts)

    def close(self) -> None:
        """Close the port; a partial frame in the framer is discarded on the next open."""
        port, self._port = self._port, None
        if port is None:
            return
        try:
            port.close()
        except (serial.SerialException, OSError) as err:
            logger.debug("Closing %s: %s", self.cfg.port, err)

    def _sync_framer_counters(self) -> None:
        counters = self._framer.counters
        current = (counters.overlong, counters.partial_discarded, counters.garbage_frames)
        if current != self._reported:
            for name, now_value, before in zip(
                ("overlong_frames", "partial_frames", "garbage_frames"), current, self._reported, strict=True
            ):
                if now_value != before:
                    self.ctx.count(name, now_value - before)
            self._reported = current
