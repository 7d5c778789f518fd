"""Settings that trust the test mail servers' CA, and a real OpenAI-compatible chat-completions server on
loopback, scripted per test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imail.config import Settings
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.smtp import tls_cert  # noqa: F401

HANG_LIMIT = 10.0  # a "hanging" answer is released at teardown, or after this many seconds at most


@pytest.fixture
def settings(database_url: str, tls_cert: CertPair) -> Settings:  # noqa: F811
    """Answers to leads go out over TLS to the test SMTP server, whose certificate the test CA signed."""
    return make_settings(database_url, mail_ca_file=str(tls_cert.ca_file))


@dataclass
class CompletionsServer:
    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    mode: tuple[Any, ...] = ("answer", '{"label": "interested", "confidence": 0.83}')
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, content: str) -> None:
        self.mode = ("answer", content)

    def fail(self, status: int) -> None:
        self.mode = ("status", status)

    def raw(self, body: bytes) -> None:
        self.mode = ("raw", body)

    def hang(self) -> None:
        self.mode = ("hang",)


def _handler(state: CompletionsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            kind = state.mode[0]
            payload = ""
            if kind == "hang":
                state.release.wait(HANG_LIMIT)
                kind, payload = "answer", '{"label": "interested"}'
            elif kind == "status":
                self.send_response(state.mode[1])
                self.end_headers()
                return
            if kind == "raw":
                payload_bytes = state.mode[1]
            else:
                content = state.mode[1] if state.mode[0] == "answer" else payload
                payload_bytes = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                ).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload_bytes)))
                self.end_headers()
                self.wfile.write(payload_bytes)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

    return Handler


@pytest.fixture
def completions_server() -> Iterator[CompletionsServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = CompletionsServer(server)
    server.RequestHandlerClass = _handler(state)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
