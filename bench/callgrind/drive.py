"""Drives N `tools/call` requests over one keep-alive HTTP/1.1 connection, for bench/callgrind/run.

    python3 drive.py PORT N modern|legacy

Extra headers for every request come from CALLGRIND_HEADERS (one `name: value` per line).

Raw sockets, so that the client costs nothing measurable and the server sees the same bytes every run. Every
answer is checked (the `add` tool of `keel-bench serve keel` must say 3).
"""
import json
import os
import socket
import sys

port, count, era = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
version = "2026-07-28" if era == "modern" else "2025-11-25"
sock = socket.create_connection(("127.0.0.1", port))
pending = b""
extra = "".join(f"{line.strip()}\r\n" for line in os.environ.get("CALLGRIND_HEADERS", "").splitlines() if line.strip())


def post(body, method, name=None, session=None):
    head = (
        f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"accept: application/json, text/event-stream\r\nmcp-protocol-version: {version}\r\nmcp-method: {method}\r\n"
    ) + extra
    if name:
        head += f"mcp-name: {name}\r\n"
    if session:
        head += f"mcp-session-id: {session}\r\n"
    data = json.dumps(body).encode()
    sock.sendall(head.encode() + f"content-length: {len(data)}\r\n\r\n".encode() + data)
    return read_response()


def fill(buffer, needed):
    while len(buffer) < needed:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("drive.py: the server closed the connection")
        buffer += chunk
    return buffer


def read_response():
    global pending
    while b"\r\n\r\n" not in pending:
        pending = fill(pending, len(pending) + 1)
    head, rest = pending.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        key, value = line.split(b":", 1)
        headers[key.strip().lower()] = value.strip()
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        rest = fill(rest, length)
        body, pending = rest[:length], rest[length:]
    else:  # chunked (an SSE answer)
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest = fill(rest, len(rest) + 1)
            size, rest = rest.split(b"\r\n", 1)
            size = int(size, 16)
            rest = fill(rest, size + 2)
            body, rest = body + rest[:size], rest[size + 2 :]
            if size == 0:
                break
        pending = rest
    return headers, body


session = None
if era == "legacy":
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "drive", "version": "1"}}
    headers, _ = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}, "initialize")
    session = headers[b"mcp-session-id"].decode()
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, "notifications/initialized", session=session)
for i in range(1, count + 1):
    params = {"name": "add", "arguments": {"a": 1, "b": 2}}
    if era == "modern":
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    request = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
    _, body = post(request, "tools/call", name="add", session=session)
    if b'"sum":3' not in body:
        raise SystemExit(f"drive.py: unexpected answer to call {i}: {body[:200]!r}")
