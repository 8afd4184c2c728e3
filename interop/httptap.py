#!/usr/bin/env python3
"""A transparent TCP proxy that records an HTTP exchange (say, MCP over streamable HTTP) byte for byte.

    httptap.py LOG_FILE LISTEN_PORT UPSTREAM_PORT

Listens on 127.0.0.1:LISTEN_PORT and forwards every connection to 127.0.0.1:UPSTREAM_PORT unchanged (requests,
responses, SSE streams, keep-alive and all), appending what passes to LOG_FILE, split into lines:

    +0.012 #1 C>S POST /mcp HTTP/1.1          connection 1, client -> server
    +0.034 #1 S>C HTTP/1.1 200 OK             connection 1, server -> client
    +0.100 #1 --- client closed its side      events: connects, EOFs, resets

Each read is logged as it arrives; a read that does not end on a newline (a JSON body, part of an SSE event) is
marked `<-- (no newline)`, so a line may be split over two log lines but never glued to the next one.

Since nothing is parsed, the log shows exactly what was sent, chunked-encoding sizes included. Runs until killed.
Standard library only.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: httptap.py LOG_FILE LISTEN_PORT UPSTREAM_PORT", file=sys.stderr)
        return 2
    log_path, listen_port, upstream_port = argv[0], int(argv[1]), int(argv[2])
    log = open(log_path, "ab", buffering=0)
    start = time.monotonic()
    ids = itertools.count(1)

    def record(conn: int, tag: str, line: bytes) -> None:
        log.write(b"+%.3f #%d %s %s\n" % (time.monotonic() - start, conn, tag.encode(), line.rstrip(b"\r")))

    async def pump(conn: int, src: asyncio.StreamReader, dst: asyncio.StreamWriter, tag: str, who: str) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
                # Each read is logged at once; a read that does not end a line (a JSON body, say) is marked.
                *lines, rest = data.split(b"\n")
                for line in lines:
                    record(conn, tag, line)
                if rest:
                    record(conn, tag, rest + b"   <-- (no newline)")
            record(conn, "---", f"{who} closed its side".encode())
            if dst.can_write_eof():
                dst.write_eof()
        except (ConnectionError, OSError) as exc:
            record(conn, "---", f"{tag}: {type(exc).__name__}: {exc}".encode())
            dst.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        conn = next(ids)
        record(conn, "---", b"client connected")
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError as exc:
            record(conn, "---", f"cannot reach 127.0.0.1:{upstream_port}: {exc}".encode())
            client_writer.close()
            return
        await asyncio.gather(
            pump(conn, client_reader, server_writer, "C>S", "client"),
            pump(conn, server_reader, client_writer, "S>C", "server"),
        )
        for writer in (server_writer, client_writer):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
