"""WiFi probe sniffer driver: raw records from a source → parsed probe requests → hashed ids → sightings.

The MAC is hashed (``edge.privacy.Hasher``) right after parsing; only the id, the locally-administered bit and,
for universal MACs, the vendor OUI are kept. A source that ends (a finished replay) leaves the sniffer ``ok`` and
idle; a source that fails is reopened with backoff.
"""

import logging

from drivers.wifi_probe.config import WifiProbeConfig
from drivers.wifi_probe.node import parse_node_line
from drivers.wifi_probe.pcap import LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP
from drivers.wifi_probe.protocol import ParseStats, parse_80211, parse_radiotap
from drivers.wifi_probe.sources import NODE_LINE, MonitorSource, PcapSource, Record, Source, make_source
from edge.driver import DriverContext, ReaderDriver
from edge.errors import ConfigError
from edge.events import Sighting
from edge.privacy import Hasher, vendor_oui

logger = logging.getLogger(__name__)

# Counters of the parser shown in `edge status` (frames dropped as malformed, truncated, ...).
STAT_NAMES = ("frames", "probes", "not_probe", "malformed", "truncated", "bad_fcs")


class SightingMaker:
    """Records → sightings: parse, hash the MAC at once, keep only what DESIGN §3 allows. Shared by the driver and
    ``edge bench wifi`` so the benchmark measures the daemon's own path."""

    def __init__(self, sniffer: str, hasher: Hasher, stats: ParseStats) -> None:
        self.sniffer = sniffer
        self.hasher = hasher
        self.stats = stats
        self.unknown_linktypes = 0
        self._fp_hex: dict[int, str] = {}  # fingerprints repeat per phone model: format each once

    def sightings(self, records: list[Record]) -> list[Sighting]:
        """The sightings in a batch of records; undecodable records are counted in ``stats`` and skipped."""
        stats, sniffer, device_id, fp_hex = self.stats, self.sniffer, self.hasher.device_id, self._fp_hex
        out: list[Sighting] = []
        append, make = out.append, Sighting
        for ts, kind, data in records:
            if kind == LINKTYPE_RADIOTAP:
                frame = parse_radiotap(data, stats)
            elif kind == LINKTYPE_IEEE802_11:
                frame = parse_80211(data, stats)
            elif kind == NODE_LINE:
                report = parse_node_line(bytes(data), stats)
                if report is not None:
                    when = report.ts if report.ts is not None else ts
                    out.append(Sighting(when, sniffer, device_id(report.mac, when), report.randomized,
                                        vendor_oui(report.mac), report.rssi, report.channel, report.seq, report.fp,
                                        report.ssid_len))
                continue
            else:
                self.unknown_linktypes += 1
                continue
            if frame is None:
                continue
            # Unpacked once: NamedTuple attribute access costs a property call each, and this runs 100k times/s.
            mac, randomized, rssi, _freq, channel, seq, ssid_len, fp = frame
            fingerprint = fp_hex.get(fp)
            if fingerprint is None:
                if len(fp_hex) > 65536:
                    fp_hex.clear()
                fingerprint = fp_hex[fp] = f"{fp:016x}"
            append(make(ts, sniffer, device_id(mac, ts), randomized, None if randomized else vendor_oui(mac), rssi,
                        channel, seq, fingerprint, ssid_len))
        return out


class WifiProbeDriver(ReaderDriver):
    """One sniffer."""

    type_key = "wifi_probe"

    def __init__(self, config: WifiProbeConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx, reconnect_max_s=30.0)
        self.cfg = config
        self._source: Source | None = None
        self._stats = ParseStats()
        self._reported = dict.fromkeys(STAT_NAMES, 0)
        self._maker: SightingMaker | None = None

    def describe(self) -> dict[str, str]:
        """Source and placement."""
        cfg = self.cfg
        target = {"monitor": cfg.interface, "pcap": str(cfg.pcap), "udp": cfg.listen, "serial": cfg.port}[cfg.source]
        facts = {"source": f"{cfg.source} {target}"}
        if cfg.source == "monitor":
            facts["channels"] = ",".join(str(c) for c in cfg.channels)
        if cfg.zone:
            facts["zone"] = cfg.zone
        return facts

    def start(self) -> None:
        """Start reading; a sniffer without the daemon's hasher would leak MACs, so that is refused."""
        if self.ctx.hasher is None:
            raise ConfigError(f"sniffer {self.cfg.name}: no device-id hasher was provided")
        self._maker = SightingMaker(self.cfg.name, self.ctx.hasher, self._stats)
        super().start()

    def open(self) -> None:
        """Open the source (a replay starts from the beginning of its file)."""
        source = make_source(self.cfg)
        source.open()
        self._source = source

    def read_once(self) -> None:
        """Turn the records available now into sightings."""
        source = self._source
        assert source is not None
        records = source.read(self._stop)
        if records:
            self._handle(records)
            self._sync_counters()
        if isinstance(source, MonitorSource) and source.channel is not None:
            self.ctx.monitor.details["channel"] = str(source.channel)
        if isinstance(source, PcapSource) and source.finished and "replay" not in self.ctx.monitor.details:
            self.ctx.monitor.details["replay"] = "finished"
            logger.info("Sniffer %s finished replaying %s", self.cfg.name, self.cfg.pcap)

    def close(self) -> None:
        """Close the source."""
        source, self._source = self._source, None
        if source is not None:
            source.close()

    def _handle(self, records: list[Record]) -> None:
        assert self._maker is not None
        emit = self.ctx.emit
        replay = isinstance(self._source, PcapSource)  # a file can wait; a full store queue would drop its frames
        for i, sighting in enumerate(self._maker.sightings(records)):
            if replay and not i % 64:
                self.ctx.wait_for_room(self._stop)
            emit(sighting, sighting.ts)

    def _sync_counters(self) -> None:
        for stat in STAT_NAMES:
            value = getattr(self._stats, stat, 0)
            if value != self._reported[stat]:
                self.ctx.count(stat, value - self._reported[stat])
                self._reported[stat] = value
