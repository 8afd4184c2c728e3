#!/usr/bin/env python3
"""A test-only round-robin HTTP/1.1 reverse proxy: each request goes to the next upstream, whatever connection it
came on, so consecutive requests of one MCP session land on different Keel instances.

    proxy.py --port PORT http://127.0.0.1:A http://127.0.0.1:B ...

* Every request and response header passes through unchanged; the proxy only adds `X-Keel-Upstream: <index>` (which
  upstream answered, 0-based) to each response, and asks the upstream to close after the response (one upstream
  connection per request is what makes per-request balancing simple).
* Bodies stream in both directions without buffering: a response is forwarded chunk by chunk as the upstream writes
  it (SSE events arrive as they are sent), and a client hanging up mid-response closes the upstream connection too,
  so the server sees the drop.
* An upstream that refuses the connection (a killed instance) is skipped: the request goes to the next one, as a
  load balancer with passive health checks does. A failure after the request was sent is not retried.
* One line per request on stdout: `proxy: #N METHOD TARGET -> upstream I: STATUS`.

Standard library only (asyncio). Not for production: no TLS, no HTTP/2, no limits beyond what tests need.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024
# Hop-by-hop headers the proxy replaces toward the upstream (every other header passes through untouched).
HOP_BY_HOP = (b"connection", b"keep-alive", b"proxy-connection")


class Peer:
    """A client connection with a little read-ahead buffer, so a byte read while watching for a hang-up is kept."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()
        self.eof = False

    async def fill(self) -> bool:
        data = await self.reader.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    async def read_until(self, marker: bytes, limit: int) -> bytes | None:
        while True:
            at = self.buffer.find(marker)
            if at >= 0:
                end = at + len(marker)
                out = bytes(self.buffer[:end])
                del self.buffer[:end]
                return out
            if len(self.buffer) > limit or self.eof or not await self.fill():
                return None

    async def read_exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if self.eof or not await self.fill():
                return None
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out


def parse_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def is_chunked(headers: list[tuple[bytes, bytes]]) -> bool:
    value = header(headers, b"transfer-encoding")
    return value is not None and b"chunked" in value.lower()


async def copy_chunked(read_line, read_exactly, write) -> bool:
    """Forwards a chunked body as it arrives, chunk by chunk, framing included. False if the body was cut short."""
    while True:
        line = await read_line()
        if line is None:
            return False
        await write(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return False
        if size == 0:
            while True:  # trailers, then the empty line
                trailer = await read_line()
                if trailer is None:
                    return False
                await write(trailer)
                if trailer == b"\r\n":
                    return True
        data = await read_exactly(size + 2)
        if data is None:
            return False
        await write(data)


class Proxy:
    def __init__(self, upstreams: list[tuple[str, int]]):
        self.upstreams = upstreams
        self.turn = itertools.count()
        self.served = itertools.count(1)

    async def connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The next upstream in turn that accepts a connection (a dead one is skipped), or None."""
        for _ in range(len(self.upstreams)):
            index = next(self.turn) % len(self.upstreams)
            host, port = self.upstreams[index]
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
                return index, reader, writer
            except (OSError, asyncio.TimeoutError):
                print(f"proxy: upstream {index} ({host}:{port}) refused the connection; trying the next", flush=True)
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Peer(reader, writer)
        try:
            while await self.one_request(client):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def one_request(self, client: Peer) -> bool:
        """Proxies one request; True when the client connection can carry another."""
        head = await client.read_until(b"\r\n\r\n", MAX_HEAD)
        if head is None:
            return False
        request_line, headers = parse_head(head)
        number = next(self.served)
        method = request_line.split(b" ", 1)[0]
        keep_alive = (header(headers, b"connection") or b"").lower() != b"close"

        picked = await self.connect()
        if picked is None:
            client.writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await client.writer.drain()
            print(f"proxy: #{number} {request_line.decode(errors='replace')} -> no upstream: 502", flush=True)
            return False
        index, up_reader, up_writer = picked
        try:
            forwarded = [request_line] + [k + b": " + v for k, v in headers if k.lower() not in HOP_BY_HOP]
            up_writer.write(b"\r\n".join(forwarded) + b"\r\nconnection: close\r\n\r\n")
            length = header(headers, b"content-length")
            if is_chunked(headers):
                async def to_upstream(data: bytes) -> None:
                    up_writer.write(data)
                    await up_writer.drain()

                if not await copy_chunked(lambda: client.read_until(b"\r\n", MAX_HEAD), client.read_exactly, to_upstream):
                    return False
            elif length is not None:
                body = await client.read_exactly(int(length))
                if body is None:
                    return False
                up_writer.write(body)
            await up_writer.drain()
            return await self.respond(client, number, request_line, method, index, up_reader) and keep_alive
        finally:
            up_writer.close()

    async def respond(self, client: Peer, number: int, request_line: bytes, method: bytes, index: int,
                      up_reader: asyncio.StreamReader) -> bool:
        try:
            head = await up_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            client.writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await client.writer.drain()
            print(f"proxy: #{number} {request_line.decode(errors='replace')} -> upstream {index}: no answer, 502",
                  flush=True)
            return False
        status_line, headers = parse_head(head)
        status = int(status_line.split(b" ")[1])
        print(f"proxy: #{number} {request_line.decode(errors='replace')} -> upstream {index}: {status}", flush=True)
        kept = [k + b": " + v for k, v in headers if k.lower() not in HOP_BY_HOP]
        length = header(headers, b"content-length")
        chunked = is_chunked(headers)
        bodiless = method == b"HEAD" or status in (204, 304) or 100 <= status < 200
        delimited_by_close = not (bodiless or chunked or length is not None)
        kept.append(b"x-keel-upstream: %d" % index)
        kept.append(b"connection: close" if delimited_by_close else b"connection: keep-alive")
        client.writer.write(b"\r\n".join([status_line] + kept) + b"\r\n\r\n")
        await client.writer.drain()
        if bodiless:
            return True

        async def to_client(data: bytes) -> None:
            client.writer.write(data)
            await client.writer.drain()

        async def copy() -> bool:
            if chunked:
                async def line() -> bytes | None:
                    try:
                        return await up_reader.readuntil(b"\r\n")
                    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                        return None

                async def exactly(size: int) -> bytes | None:
                    try:
                        return await up_reader.readexactly(size)
                    except asyncio.IncompleteReadError:
                        return None

                return await copy_chunked(line, exactly, to_client)
            remaining = int(length) if length is not None else None
            while remaining is None or remaining > 0:
                data = await up_reader.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not data:
                    return remaining is None
                if remaining is not None:
                    remaining -= len(data)
                await to_client(data)
            return True

        # Watch the client while the response streams: a hang-up (an SSE client dropping its stream) must reach the
        # upstream as a closed connection, not linger until the upstream writes again.
        copying = asyncio.ensure_future(copy())
        while True:
            watcher = asyncio.ensure_future(client.fill()) if not client.eof else None
            waiting = {copying} | ({watcher} if watcher else set())
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if watcher and watcher in done and not watcher.result():
                copying.cancel()
                try:
                    await copying
                except (asyncio.CancelledError, ConnectionError):
                    pass
                print(f"proxy: #{number} client hung up mid-response (upstream {index})", flush=True)
                return False
            if copying in done:
                if watcher and not watcher.done():
                    watcher.cancel()
                    try:
                        await watcher
                    except asyncio.CancelledError:
                        pass
                complete = copying.result()
                return complete and not delimited_by_close


async def serve(port: int, upstreams: list[tuple[str, int]]) -> None:
    proxy = Proxy(upstreams)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
    print(f"proxy: listening on http://127.0.0.1:{port}, {len(upstreams)} upstream(s)", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="round-robin HTTP proxy for scale-out tests")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("upstream", nargs="+", help="http://HOST:PORT of each instance")
    args = parser.parse_args(argv)
    upstreams = []
    for url in args.upstream:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            parser.error(f"{url}: expected http://HOST:PORT")
        upstreams.append((parts.hostname, parts.port))
    try:
        asyncio.run(serve(args.port, upstreams))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
