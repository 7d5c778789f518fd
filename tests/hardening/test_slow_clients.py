"""Slow clients cannot hold connections: a real `imail serve` (IMAIL_REQUEST_STALL_SECONDS=1) closes
connections that send nothing, whose headers never finish (even trickled a byte at a time), or whose body
stops; a 408 in the contract's shape answers a request that had begun. The API key is checked before a body is
read: a client without one gets its 401 without sending a byte of a 9.5 MB body."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from imail.main import create_app
from tests.conftest import make_settings
from tests.fixtures.api_servers import api_servers
from tests.fixtures.factories import make_workspace

PATIENCE = 30.0  # seconds a test waits for the server to close a socket before calling it still open


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (recv returns b'')."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        raise AssertionError(
            f"the server kept the connection open for {PATIENCE} s; it sent {answer[:200]!r}"
        ) from None
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return answer


def head_of(port: int, method: str, path: str, key: str | None = None, length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_timeout_answer(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    error = json.loads(body)
    assert error["error"]["code"] == "request_timeout" and error["request_id"].startswith("req_")


def stalled_connections(port: int, key: str) -> None:
    """Many at once, of each kind (they are all waited on together, so the test takes one stall, not many)."""
    silent = [connect(port) for _ in range(20)]
    unfinished_head = []
    for _ in range(30):
        sock = connect(port)
        sock.sendall(b"GET /v1/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode()[:10])
        unfinished_head.append(sock)
    unfinished_body = []
    for _ in range(10):
        sock = connect(port)
        sock.sendall(head_of(port, "POST", "/v1/suppressions", key, 200) + b'{"email": "a')
        unfinished_body.append(sock)
    with ThreadPoolExecutor(max_workers=64) as pool:
        silent_answers = list(pool.map(until_closed, silent))
        head_answers = list(pool.map(until_closed, unfinished_head))
        body_answers = list(pool.map(until_closed, unfinished_body))
    assert silent_answers == [b""] * len(silent)  # nothing asked, nothing answered: just closed
    for answer in head_answers + body_answers:
        assert_timeout_answer(answer)


def trickled_head_is_cut_off(port: int) -> int:
    """Slowloris: one header byte every 0.2 s keeps the connection busy but never finishes the head. The bound
    is on the whole head, so the server closes it however steadily bytes arrive; how many bytes it took."""
    sock = connect(port)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Padding: " + b"a" * 1000
    sent = 0
    try:
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return sent
            sent += 1
            time.sleep(0.2)
            sock.settimeout(0)
            try:
                sock.recv(65536)  # the 408, or b"" once closed: cut off either way
                return sent
            except BlockingIOError:
                pass
            finally:
                sock.settimeout(PATIENCE)
        raise AssertionError("a head trickled for 200 s was never cut off")
    finally:
        sock.close()


def moving_body_is_not_cut_off(port: int, key: str, chunks: int, pause: float) -> bytes:
    """A body that keeps arriving (a chunk every `pause` s, longer in all than the bound) is read to the
    end."""
    body = json.dumps({"email": "slow@example.com"}).encode()
    body += b" " * (chunks - len(body) % chunks)
    sock = connect(port)
    sock.sendall(head_of(port, "POST", "/v1/suppressions", key, len(body)))
    size = len(body) // chunks
    for start in range(0, len(body), size):
        time.sleep(pause)
        sock.sendall(body[start : start + size])
    sock.settimeout(PATIENCE)
    answer = sock.recv(65536)
    sock.close()
    return answer


def unauthenticated_big_body(port: int, key: str | None) -> bytes:
    """Headers declaring a 9.5 MB body, and not a byte of it: the answer must come without it."""
    sock = connect(port)
    sock.sendall(head_of(port, "POST", "/v1/leads/bulk", key, 9_961_472))
    return until_closed(sock)


async def test_stalled_requests_are_closed_and_keys_are_checked_before_bodies(database_url, database):
    keys = await make_workspace(database, "surge", "Slow")
    env = {"IMAIL_DATABASE_URL": database_url, "IMAIL_REQUEST_STALL_SECONDS": "1"}
    with api_servers(1, env) as [server]:
        port = server.port
        await asyncio.to_thread(stalled_connections, port, keys.live_key)
        sent = await asyncio.to_thread(trickled_head_is_cut_off, port)
        assert sent < 1000, sent

        for key in (None, "imk_live_unknown0000000000000000000000", keys.live_key[:-4] + "AAAA"):
            answer = await asyncio.to_thread(unauthenticated_big_body, port, key)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "unauthorized"

        answer = await asyncio.to_thread(moving_body_is_not_cut_off, port, keys.live_key, 8, 0.3)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        async with httpx.AsyncClient(base_url=server.base_url, timeout=PATIENCE) as http:
            health = await http.get("/healthz")  # and the server is as available as before
            assert health.status_code == 200


async def test_the_key_is_checked_before_the_body_is_read(database_url, database, workspace):
    """In process, with a receive() that records whether the app asked for the body."""
    app = create_app(make_settings(database_url))
    body = json.dumps({"email": "ok@example.com"}).encode()

    async def call(
        headers: dict[str, str], method: str = "POST", path: str = "/v1/suppressions"
    ) -> tuple[int, bool]:
        read = False
        status = 0

        async def receive():
            nonlocal read
            read = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "scheme": "http",
            "query_string": b"",
            "server": ("imail.test", 80),
            "client": ("127.0.0.1", 5000),
            "headers": [
                (k.lower().encode(), v.encode())
                for k, v in {
                    "content-type": "application/json",
                    "content-length": str(len(body)),
                    **headers,
                }.items()
            ],
        }
        await app(scope, receive, send)
        return status, read

    async with app.router.lifespan_context(app):
        assert await call({}) == (401, False)
        assert await call({"authorization": "Bearer imk_live_nope"}) == (401, False)
        assert await call({"authorization": "Basic abc"}) == (401, False)
        assert await call({"authorization": f"Bearer {workspace.live_key}"}) == (201, True)
        # Public routes with a body are not asked for a key (one-click unsubscribe posts a form).
        status, _ = await call({"content-type": "application/x-www-form-urlencoded"}, path="/u/forged")
        assert status == 404


def test_every_api_route_taking_a_body_needs_a_key(repo_root):
    """AuthenticateBeforeBody asks a key of every POST/PUT/PATCH/DELETE under /v1/: that holds only while no
    such route is public. A public one added later must come with its own rule there."""
    document = json.loads((repo_root / "openapi.json").read_text())
    operations = [
        (method, path, op)
        for path, ops in document["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE")
    ]
    assert len(operations) > 20
    assert [(m, p) for m, p, op in operations if not op.get("security")] == []
