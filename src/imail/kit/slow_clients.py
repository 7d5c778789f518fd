"""uvicorn's HTTP protocol with the two timeouts it lacks, so slow clients cannot hold connections for ever.

uvicorn closes idle keep-alive connections, but nothing bounds a request still arriving: a client may open a
connection and send nothing, or trickle its headers a byte at a time (slowloris), or stop half-way through a
body, and the connection stays open. ASGI middleware cannot help with headers (it runs once they are
complete), so the bound lives in the protocol, with nginx's semantics:

- headers: the whole request head must arrive within IMAIL_REQUEST_STALL_SECONDS of the connection opening or
of
  the request's first byte (trickling does not extend it);
- body: it may pause at most that long between two reads (a large upload on a slow link goes on as long as it
  moves). Time the server itself stops reading (flow control) does not count.

Past either, a request that has no response yet gets a 408 `request_timeout` in the contract's error shape,
and the connection is closed. `imail serve` runs uvicorn with this protocol (cli.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from imail.config import get_settings
from imail.errors import error_body
from imail.kit.ids import new_id


class StallGuardedProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall_seconds = get_settings().request_stall_seconds
        self._stall_timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "head" or "body" while a request is arriving

    def _arm(self) -> None:
        self._disarm()
        self._stall_timer = self.loop.call_later(self.stall_seconds, self._stalled)

    def _disarm(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    # The connection opens: its first request head is due within the bound.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "head"
        if self._stall_timer is None:  # a request after a keep-alive pause: its head's deadline starts now
            self._arm()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = "body"
        self._arm()  # the body's clock (cancelled at once for a request without one)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._phase = None

    def _stalled(self) -> None:
        self._stall_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            # the server stopped reading (the app has not taken the body yet): not the client's stall
            self._arm()
            return
        cycle = (
            self.cycle if self._phase == "body" else None
        )  # in a head, self.cycle is the previous request's
        if self._phase == "head" or (cycle is not None and not cycle.response_started):
            self.transport.write(_timeout_response(self.stall_seconds))
        if cycle is not None and not cycle.response_complete:
            # The app (if it is waiting on the body) sees the client go: its receive() returns
            # http.disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def _timeout_response(seconds: float) -> bytes:
    request_id = new_id("req")
    body = orjson.dumps(
        error_body(
            "request_timeout",
            f"The request did not arrive within {seconds:g} s (headers) or its body stalled that long",
            request_id=request_id,
        )
    )
    head = (
        f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
