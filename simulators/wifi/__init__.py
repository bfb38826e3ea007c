"""Probe-request traffic simulator: ground-truth people and phones → radiotap frames, pcap files and node feeds."""

from simulators.wifi.devices import Capture
from simulators.wifi.engine import Knobs, Simulation, simulate
from simulators.wifi.feed import PtyNode, node_lines, stream_udp
from simulators.wifi.pcapio import write_pcap, write_pcapng
from simulators.wifi.truth import Truth
from simulators.wifi.world import Sniffer, Street, World, default_world

__all__ = [
    "Capture",
    "Knobs",
    "PtyNode",
    "Simulation",
    "Sniffer",
    "Street",
    "Truth",
    "World",
    "default_world",
    "node_lines",
    "simulate",
    "stream_udp",
    "write_pcap",
    "write_pcapng",
]
