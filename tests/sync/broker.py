"""The test suite's mosquitto broker is the simulators' one (a real broker on free loopback ports)."""

from simulators.broker import Broker, Certs, free_port, make_certs

__all__ = ["Broker", "Certs", "free_port", "make_certs"]
