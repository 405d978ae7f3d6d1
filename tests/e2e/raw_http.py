"""HTTP/1.1 over a plain socket, for tests that must know a request has reached the server before
they act (a signal, a stop): /proc/net/tcp tells when the server's end has read everything sent."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.e2e.server import wait_until

DEADLINE = 30


def _tcp_entry(address: tuple[str, int]) -> str:
    host, port = address
    return f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"


def server_has_read_all(server_port: int, client: socket.socket) -> bool:
    """The server's end of `client`'s connection has nothing left unread (/proc/net/tcp's rx_queue):
    the request's head has reached the server, which hands it to the app at once."""
    local = _tcp_entry(("127.0.0.1", server_port))
    remote = _tcp_entry(client.getsockname())
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[1], 16) == 0
    return False


def send_request(client: socket.socket, port: int, head: str, body: bytes = b"") -> socket.socket:
    """Send `head` (and `body`) on `client` and return it once the server has read all of it."""
    client.sendall(head.encode() + body)
    wait_until(lambda: server_has_read_all(port, client), DEADLINE, what="the server to read the request")
    return client


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    """A new connection that has sent `head` (and `body`), once the server has read all of it."""
    return send_request(socket.create_connection(("127.0.0.1", port), timeout=DEADLINE), port, head, body)


def read_to_end(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the request said `Connection: close`)."""
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    return data


def answer_of(client: socket.socket) -> tuple[int, dict[str, Any]]:
    """Read one HTTP/1.1 answer to the end."""
    head, _, body = read_to_end(client).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def read_until(client: socket.socket, marker: bytes) -> bytes:
    """What the server sends up to and including `marker` (the socket's timeout bounds the wait)."""
    data = b""
    while marker not in data:
        chunk = client.recv(65536)
        assert chunk, f"closed before {marker!r}: {data!r}"
        data += chunk
    return data


def kept_alive_answer(client: socket.socket) -> dict[str, Any]:
    """One JSON answer with a `Content-Length` on a connection that stays open."""
    data = read_until(client, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = client.recv(65536)
        assert chunk, "closed mid-answer"
        body += chunk
    answer: dict[str, Any] = json.loads(body)
    return answer


def auth_lines(headers: Mapping[str, str]) -> str:
    """The caller's `Authorization` and `AppKey` header lines."""
    return f"Authorization: {headers['Authorization']}\r\nAppKey: {headers['AppKey']}\r\n"


def held_read_head(key: str, headers: Mapping[str, str], wait: int = 60) -> str:
    """A status read of `key` asked to wait `wait` seconds, on a connection closed after it."""
    return (
        f"GET /v1/jobs/insight/status/{key}?wait={wait} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth_lines(headers)}"
        "Connection: close\r\n\r\n"
    )


def stream_head(headers: Mapping[str, str]) -> str:
    """An event stream's request, on a connection closed after it."""
    return (
        f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{auth_lines(headers)}"
        "Connection: close\r\n\r\n"
    )
