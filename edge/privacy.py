"""Device identifiers under privacy (DESIGN §3): a MAC becomes a keyed, truncated hash the moment it is parsed.

The key (salt) rotates at store-local midnight (daily) or Monday midnight (weekly). The current salt is kept in a
file next to the database that only the service user can read (``<database>.salt``, mode 0600), so a restart within
the period keeps ids stable; at rotation a new file replaces it and the old salt is gone. Frames older than the
current period (a replayed capture) are hashed with a salt made for that period in memory only and never stored.
Only the locally-administered bit and, for universal MACs, the vendor OUI survive hashing.
"""

import hashlib
import json
import logging
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

ID_BYTES = 8  # 64-bit ids: collisions are negligible for a store's devices per period, and nothing more is kept
SALT_BYTES = 32
CACHE_LIMIT = 200_000  # MAC → id memo of the current period, cleared at rotation and when it grows past this


def period_start(ts: float, tz: ZoneInfo, rotation: Literal["daily", "weekly"]) -> float:
    """Epoch seconds of the store-local midnight that starts the salt period containing ``ts``."""
    local = datetime.fromtimestamp(ts, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if rotation == "weekly":
        midnight -= timedelta(days=midnight.weekday())
    # Re-localise: across a DST change the wall-clock midnight keeps its own UTC offset.
    return datetime(midnight.year, midnight.month, midnight.day, tzinfo=tz).timestamp()


def next_period_start(start: float, tz: ZoneInfo, rotation: Literal["daily", "weekly"]) -> float:
    """Start of the period after the one starting at ``start``."""
    days = 7 if rotation == "weekly" else 1
    local = datetime.fromtimestamp(start, tz) + timedelta(days=days, hours=3)  # +3 h: safe across DST shifts
    return period_start(local.timestamp(), tz, rotation)


def load_or_create_salt(path: Path, start: float) -> bytes:
    """The salt of the period starting at ``start``, from ``path``; a new one replaces an older period's salt.

    The file is written to a temporary name (mode 0600) and renamed over the old one, so the old salt is gone
    once the rename is done. It is never in the database, so neither a reader of the database (the technician
    group) nor a database backup can brute-force universal MACs from their vendor prefix.
    """
    try:
        stored = json.loads(path.read_text(encoding="ascii"))
        if float(stored["period_start"]) == start:
            return bytes.fromhex(stored["salt"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("Salt file %s unreadable (%s); starting a new salt period", path, err)
    salt = os.urandom(SALT_BYTES)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        json.dump({"period_start": start, "salt": salt.hex()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return salt


class Hasher:
    """Turns MACs into salted ids; one per daemon, shared by every sniffer so ids match across sniffers."""

    def __init__(self, tz: ZoneInfo, rotation: Literal["daily", "weekly"], salt_file: Path) -> None:
        self._tz = tz
        self._rotation = rotation
        self._salt_file = salt_file
        self._lock = threading.Lock()
        self._start = float("-inf")
        self._end = float("-inf")
        self._salt = b""
        self._memo: dict[bytes, str] = {}
        self._past: dict[float, bytes] = {}

    @property
    def period(self) -> tuple[float, float]:
        """Start and end (epoch seconds) of the current salt period."""
        return self._start, self._end

    def device_id(self, mac: bytes, ts: float) -> str:
        """The id of ``mac`` in the salt period of event time ``ts`` (16 hex digits)."""
        if self._start <= ts < self._end:
            known = self._memo.get(mac)
            if known is not None:
                return known
            ident = hashlib.blake2b(mac, key=self._salt, digest_size=ID_BYTES).hexdigest()
            if len(self._memo) >= CACHE_LIMIT:
                self._memo.clear()
            self._memo[mac] = ident
            return ident
        return self._outside_period(mac, ts)

    def _outside_period(self, mac: bytes, ts: float) -> str:
        if ts >= self._end:
            self._rotate(ts)
            return self.device_id(mac, ts)
        # An older period (a replayed capture): its salt is gone, so use a throwaway one kept in memory only.
        start = period_start(ts, self._tz, self._rotation)
        with self._lock:
            salt = self._past.setdefault(start, os.urandom(SALT_BYTES))
            if len(self._past) > 8:
                self._past.pop(min(self._past))
        return hashlib.blake2b(mac, key=salt, digest_size=ID_BYTES).hexdigest()

    def _rotate(self, ts: float) -> None:
        with self._lock:
            if self._start <= ts < self._end:
                return  # another sniffer's thread rotated first
            start = period_start(ts, self._tz, self._rotation)
            salt = load_or_create_salt(self._salt_file, start)
            first = self._end == float("-inf")
            self._start, self._end = start, next_period_start(start, self._tz, self._rotation)
            self._salt = salt
            self._memo = {}
        if not first:
            logger.info("Device-id salt rotated; ids from the previous period can no longer be linked")


def vendor_oui(mac: bytes) -> str | None:
    """The vendor prefix of a universal MAC as 'aa:bb:cc'; None for a locally administered (randomized) one."""
    if mac[0] & 0x02:
        return None
    return f"{mac[0]:02x}:{mac[1]:02x}:{mac[2]:02x}"
