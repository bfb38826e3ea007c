"""HTTP client of an OpenEPaperLink access point (aiohttp): paged /get_db, uploads, tag commands, AP info.

Failures are sorted by what the caller should do about them: ``ApBusy`` (409 "come back later": wait and retry),
``ApTimeout`` (no answer in time: the upload may or may not have landed; retry counts against the update),
``ApUnreachable`` (connection refused/reset: the AP is offline or rebooting; nothing is charged to an update) and
``ApRejected`` (the AP answered with an error: not worth retrying).
"""

import asyncio
import json
from dataclasses import dataclass

import aiohttp

from drivers.esl.protocol import TagRecord, parse_db_page


class ApError(Exception):
    """A request to the access point did not succeed."""


class ApBusy(ApError):
    """HTTP 409: the AP is busy with another upload or not in RUN state."""


class ApTimeout(ApError):
    """The AP did not answer in time."""


class ApUnreachable(ApError):
    """The AP refused or dropped the connection."""


class ApRejected(ApError):
    """The AP answered with an error status (unknown mac, missing parameters, ...)."""


@dataclass(slots=True)
class DbFetch:
    """The result of reading the whole tag DB: ``complete`` only when every page arrived."""

    records: list[TagRecord]
    complete: bool
    pages: int
    malformed: int
    error: str | None = None


class ApClient:
    """One AP's HTTP API over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_s: float) -> None:
        self._session = session
        self._base = base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _request(self, method: str, path: str, **kwargs: object) -> str:
        try:
            async with self._session.request(method, self._base + path, timeout=self._timeout,
                                             **kwargs) as response:  # type: ignore[arg-type]
                body = await response.text(errors="replace")
                if response.status == 409:
                    raise ApBusy(f"{path}: 409 {body.strip()[:80]}")
                if response.status >= 400:
                    raise ApRejected(f"{path}: {response.status} {body.strip()[:120]}")
                return body
        except TimeoutError as err:
            raise ApTimeout(f"{path}: no answer within {self._timeout.total:.0f} s") from err
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as err:
            raise ApUnreachable(f"{path}: {type(err).__name__}: {err}") from err

    async def fetch_db(self, retries: int) -> DbFetch:
        """Every tag, following the ``continu`` markers; a page that keeps failing makes the fetch partial."""
        records: list[TagRecord] = []
        position, pages, malformed = 0, 0, 0
        while True:
            body: str | None = None
            error = ""
            for attempt in range(retries):
                try:
                    body = await self._request("GET", "/get_db", params={"pos": str(position)})
                    break
                except ApError as err:
                    error = str(err)
                    if attempt + 1 < retries:
                        await asyncio.sleep(0.5 * (attempt + 1))
            if body is None:
                return DbFetch(records, False, pages, malformed, error)
            try:
                page, following, bad = parse_db_page(body)
            except ValueError as err:
                return DbFetch(records, False, pages, malformed, str(err))
            records += page
            pages += 1
            malformed += bad
            if following is None:
                return DbFetch(records, True, pages, malformed)
            if following <= position:
                # Firmware keeps ``pos`` in a uint8_t: past 255 tags the AP pages from 0 again. Not complete.
                return DbFetch(records, False, pages, malformed, f"/get_db paging went back ({position} → {following})")
            position = following

    async def json_upload(self, mac: str, payload: bytes) -> None:
        """Queue a JSON template (``payload`` is the exact ``json`` form value) for a label."""
        await self._request("POST", "/jsonupload", data={"mac": mac, "json": payload.decode("utf-8")})

    async def image_upload(self, mac: str, jpeg: bytes) -> None:
        """Queue a baseline JPEG at the label's native resolution (no dithering: it is drawn in the palette)."""
        form = aiohttp.FormData()
        form.add_field("mac", mac)
        form.add_field("dither", "0")
        form.add_field("file", jpeg, filename=f"{mac}.jpg", content_type="image/jpeg")
        await self._request("POST", "/imgupload", data=form)

    async def tag_cmd(self, mac: str, cmd: str) -> None:
        """A tag command (``ledflash``, ``refresh``, ``clear`` ...)."""
        await self._request("POST", "/tag_cmd", data={"mac": mac, "cmd": cmd})

    async def get_json(self, path: str) -> dict[str, object]:
        """A JSON object endpoint such as ``/sysinfo`` or ``/get_ap_config``."""
        body = await self._request("GET", path)
        try:
            value = json.loads(body)
        except json.JSONDecodeError as err:
            raise ApRejected(f"{path}: not JSON ({err})") from err
        if not isinstance(value, dict):
            raise ApRejected(f"{path}: not a JSON object")
        return value
