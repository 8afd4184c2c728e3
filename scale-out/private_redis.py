"""A private Redis for one test run: `redis-server` on a free loopback port, no persistence, stopped at the end.

    with PrivateRedis.start(workdir) as redis:
        redis.url          # redis://127.0.0.1:PORT/
        redis.command("INFO", "commandstats")
        redis.restart()    # stop and start again on the same port (an empty database: nothing is persisted)

`ensure_redis_server()` finds `redis-server` on PATH or installs Debian's package (as root only; otherwise it
returns the reason it cannot). Standard library only; also usable as a script: `private_redis.py` runs one in the
foreground and prints its URL, until Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 15.0


def ensure_redis_server() -> tuple[str | None, str]:
    """Returns (path of redis-server, "") or (None, why it is missing). Installs it with apt-get when root."""
    found = shutil.which("redis-server")
    if found:
        return found, ""
    if os.geteuid() != 0:
        return None, "redis-server is not installed and this is not root (apt-get install redis-server)"
    if not shutil.which("apt-get"):
        return None, "redis-server is not installed and there is no apt-get to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"]):
        print("scale-out: " + " ".join(cmd), flush=True)
        done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[-400:]}"
    found = shutil.which("redis-server")
    return (found, "") if found else (None, "apt-get installed redis-server but it is not on PATH")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(*args: str | bytes | int) -> bytes:
    """A RESP array of bulk strings: how a client sends a command."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def read_reply(stream) -> object:
    """One RESP2 reply from a buffered socket file; an error reply raises RuntimeError."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by Redis")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RuntimeError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(body)
        return None if size < 0 else [read_reply(stream) for _ in range(size)]
    raise RuntimeError(f"unexpected reply from Redis: {line!r}")


class PrivateRedis:
    """One redis-server child process owned by this run."""

    def __init__(self, binary: str, workdir: Path, port: int):
        self.binary, self.workdir, self.port = binary, workdir, port
        self.proc: subprocess.Popen | None = None
        self.log = workdir / f"redis-{port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    @classmethod
    def start(cls, workdir: Path, binary: str | None = None) -> "PrivateRedis":
        binary = binary or shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found (ensure_redis_server() installs it)")
        redis = cls(binary, workdir, free_port())
        redis._launch()
        return redis

    def _launch(self) -> None:
        # No RDB snapshots, no AOF, loopback only, no protected-mode surprises; the working dir is ours.
        cmd = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir), "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.proc.returncode}; log: {self.log}")
            try:
                if self.command("PING") == "PONG":
                    return
            except (OSError, RuntimeError, ConnectionError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {START_TIMEOUT_S:.0f} s")

    def command(self, *args: str | bytes | int, timeout: float = 5.0) -> object:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(encode(*args))
            with sock.makefile("rb") as stream:
                return read_reply(stream)

    def info(self, section: str) -> dict[str, str]:
        text = str(self.command("INFO", section))
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))
        return {key: value for key, value in pairs}

    def commands_processed(self) -> int:
        """Commands Redis executed so far (INFO stats total_commands_processed)."""
        return int(self.info("stats").get("total_commands_processed", "0"))

    def stop(self) -> None:
        if not self.proc:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None

    def restart(self) -> None:
        """Stops Redis and starts it again on the same port: every key is gone (nothing is persisted)."""
        self.stop()
        self._launch()

    def __enter__(self) -> "PrivateRedis":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def main() -> int:
    binary, why = ensure_redis_server()
    if not binary:
        print(f"private_redis: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="keel-redis-") as tmp, PrivateRedis.start(Path(tmp), binary) as redis:
        print(redis.url, flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    sys.exit(main())
