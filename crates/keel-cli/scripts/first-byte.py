#!/usr/bin/env python3
"""Start-up to the first byte on the wire: how long from spawning `keel tools list URL` until the first byte of
its first HTTP request reaches a loopback listener. The listener never answers; keel is killed once the byte
arrived. Prints the median and the spread over RUNS runs.

    crates/keel-cli/scripts/first-byte.py [KEEL] [RUNS]      # KEEL defaults to target/release/keel
"""

import socket
import statistics
import subprocess
import sys
import time


def main() -> None:
    keel = sys.argv[1] if len(sys.argv) > 1 else "target/release/keel"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(10)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen([keel, "tools", "list", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        connection, _ = listener.accept()
        connection.settimeout(10)
        connection.recv(1)
        samples.append((time.perf_counter() - started) * 1000)
        child.kill()
        child.wait()
        connection.close()
    samples.sort()
    print(
        f"first byte after {statistics.median(samples):.1f} ms median "
        f"(min {samples[0]:.1f}, p90 {samples[int(len(samples) * 0.9) - 1]:.1f}, {runs} runs)"
    )


if __name__ == "__main__":
    main()
