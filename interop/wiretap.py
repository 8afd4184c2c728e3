#!/usr/bin/env python3
"""A transparent stdio proxy that records an MCP stdio exchange, line by line.

    wiretap.py LOG_FILE -- COMMAND [ARGS...]

Runs COMMAND with its stdin/stdout piped through this process, so an MCP client that spawns `wiretap.py ... -- server`
talks to the server exactly as if it had spawned it directly. Every line is forwarded unchanged, as soon as it is
complete, and appended to LOG_FILE as

    +0.012 C>S {"jsonrpc":"2.0",...}     client -> server (our stdin, the server's stdin)
    +0.034 S>C {"jsonrpc":"2.0",...}     server -> client (the server's stdout, our stdout)
    +0.035 S!! Starting server...        the server's stderr (also passed through to our stderr)
    +0.100 --- client closed stdin       events: EOF, exit status, signals

When our stdin reaches EOF the server's stdin is closed; when the server exits we exit with its status (128+N for a
signal). SIGTERM/SIGINT/SIGHUP are passed on to the server. Standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: wiretap.py LOG_FILE -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    log_path, command = argv[0], argv[2:]
    start = time.monotonic()
    log = open(log_path, "ab", buffering=0)
    log_lock = threading.Lock()

    def record(tag: str, data: bytes) -> None:
        line = data.rstrip(b"\r\n")
        with log_lock:
            log.write(b"+%.3f %s %s\n" % (time.monotonic() - start, tag.encode(), line))

    record("---", ("start " + " ".join(command)).encode())
    try:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        record("---", f"cannot start: {exc}".encode())
        print(f"wiretap: cannot start {command[0]}: {exc}", file=sys.stderr)
        return 127

    def forward_signal(signum: int, _frame: object) -> None:
        record("---", f"got signal {signal.Signals(signum).name}; passing it on".encode())
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward_signal)

    def pump(src, dst, tag: str, eof_note: str, close_dst: bool) -> None:
        pending = b""
        while True:
            try:
                chunk = src.read1(65536) if hasattr(src, "read1") else os.read(src.fileno(), 65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                break
            try:
                view = memoryview(chunk)
                while view:  # raw pipes may take a write in parts
                    written = dst.write(view)
                    view = view[written if written is not None else len(view) :]
                dst.flush()
            except (OSError, ValueError):
                record("---", f"cannot forward ({tag}): peer gone".encode())
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                record(tag, line)
        if pending:
            record(tag, pending + b"   <-- (no trailing newline)")
        record("---", eof_note.encode())
        if close_dst:
            try:
                dst.close()
            except OSError:
                pass

    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    threads = [
        threading.Thread(target=pump, args=(stdin, child.stdin, "C>S", "client closed its output (EOF)", True), daemon=True),
        threading.Thread(target=pump, args=(child.stdout, stdout, "S>C", "server closed stdout (EOF)", False), daemon=True),
        threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer, "S!!", "server closed stderr", False), daemon=True),
    ]
    for thread in threads:
        thread.start()
    status = child.wait()
    # Let the output pumps drain what the server wrote before exiting (the stdin pump may block forever).
    for thread in threads[1:]:
        thread.join(timeout=5)
    record("---", (f"server exited with status {status}" if status >= 0 else f"server killed by signal {-status}").encode())
    try:
        stdout.flush()
    except OSError:
        pass
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
