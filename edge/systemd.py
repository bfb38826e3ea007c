"""sd_notify without a dependency: READY, WATCHDOG, STOPPING and STATUS datagrams to ``$NOTIFY_SOCKET``."""

import logging
import os
import socket

logger = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send one sd_notify message; False when not run by systemd (no ``$NOTIFY_SOCKET``) or on error."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as err:
        logger.warning("sd_notify %r failed: %s", message.split("=", 1)[0], err)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half the systemd watchdog timeout in seconds when the watchdog is on for this process, else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None
