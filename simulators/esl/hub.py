"""The AP's ``/ws`` side: each client gets a queue and a pump, so a slow reader never holds up the radio loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

WS_QUEUE_LIMIT = 10_000  # messages held for a slow client; past this the AP drops them


@dataclass(eq=False)
class _Client:
    """One websocket connection; ``None`` in its queue means "send a close frame and stop"."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    pump: asyncio.Task[None] | None = None


class WsHub:
    """Every connected web UI or driver; ``send`` is the firmware's ``ws.textAll``."""

    def __init__(self, on_change: Callable[[int], None], close_timeout_s: float) -> None:
        self.dropped = 0
        self._on_change = on_change
        self._close_timeout_s = close_timeout_s
        self._clients: set[_Client] = set()

    def __len__(self) -> int:
        return len(self._clients)

    def send(self, text: str) -> None:
        """Queue ``text`` for every client."""
        for client in self._clients:
            if client.queue.qsize() >= WS_QUEUE_LIMIT:
                self.dropped += 1
            else:
                client.queue.put_nowait(text)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The ``/ws`` endpoint: register the client, ignore what it sends, forget it when it goes."""
        ws = web.WebSocketResponse(timeout=self._close_timeout_s)
        transport = request.transport
        await ws.prepare(request)
        client = _Client(ws, transport)
        client.pump = asyncio.create_task(self._pump(client))
        self._clients.add(client)
        self._on_change(len(self._clients))
        try:
            async for _message in ws:
                pass  # the AP only acts on flasher commands, which this AP does not have
        finally:
            self._clients.discard(client)
            self._on_change(len(self._clients))
            client.pump.cancel()
        return ws

    async def _pump(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):  # the peer went while we were writing
            while (text := await client.queue.get()) is not None:
                await client.ws.send_str(text)
            await client.ws.close(code=1001)

    async def close_all(self, last_text: str) -> None:
        """Send ``last_text``, then a close frame, to everybody; waits (briefly) until they are out."""
        self.send(last_text)
        pumps = []
        for client in self._clients:
            client.queue.put_nowait(None)
            if client.pump is not None:
                pumps.append(client.pump)
        if pumps:
            await asyncio.wait(pumps, timeout=self._close_timeout_s)

    def abort_all(self) -> None:
        """Cut every client's TCP connection: no close frame, no goodbye."""
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.abort()
