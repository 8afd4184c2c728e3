#!/usr/bin/env python3
"""Scale-out proof: several `conformance-server` instances sharing one private Redis (REDIS_URL), behind the
round-robin proxy of scale-out/proxy.py, so consecutive requests of one session land on different instances.

Invoked through `scale-out/run`; `scale-out/run --help` lists the options. Each test gets a fresh cluster: a
private Redis (scale-out/private_redis.py: free loopback port, no persistence), N instances, the proxy; all of it
is stopped when the test ends, failed or not.

  suite          the official server suite (`--suite all --spec-version 2025-11-25`, the pinned toolchain of
                 conformance/run) through the proxy, judged by conformance-score against
                 conformance/expected-failures.yml exactly as a single instance is
  python-sdk     the Python SDK client (pinned `mcp`, the interop venv) in a legacy session through the proxy:
                 tools, an elicitation answered on another instance, SEP-1699 resumption on another instance
  stream-500     test_progress_stream on instance A: 500 progress notifications and one elicitation; the stream is
                 dropped at the 250th and resumed (Last-Event-ID) on C, the answer is POSTed to B; every progress
                 1..500 arrives exactly once and the tool completes with the answer
  kill-instance  kill -9 of one instance while it streams a call: the next calls through the proxy succeed in the
                 same session, without a new initialize; resuming the killed call's stream elsewhere ends (404)
                 within 45 s, not after the events' hour in Redis
  delete-session DELETE on one instance: every instance answers 404 for that session after
  redis-restart  Redis stopped: a new session gets 503 with Retry-After while a stateless (2026-07-28) call still
                 works; Redis started again: the instances recover without a restart

A test marked `needs` below is reported IGNORED with its reason (run it anyway with --include-ignored), like
`#[ignore = "..."]` in Rust: it checks something that does not work yet.

Exit: 0 when every selected test passed (or was ignored), 1 when one failed, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "conformance"))
sys.path.insert(0, str(HERE))

import runner  # noqa: E402 - conformance/runner.py: pinned toolchain, build, process helpers
from private_redis import PrivateRedis, ensure_redis_server  # noqa: E402

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
HTTP_TIMEOUT = 30.0
TEST_TIMEOUT = 240  # seconds per test, setup of its cluster included

# Tests that check something not working yet, each with the reason (reported IGNORED; `--include-ignored` runs
# them regardless). Remove an entry once its reason is fixed.
NEEDS: dict[str, str] = {}


class Failure(Exception):
    """A check failed; the message says what was expected and what came back."""


def say(text: str) -> None:
    print(f"scale-out: {text}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


# ------------------------------------------------------------------------------------------------------ cluster


@dataclass
class Instance:
    index: int
    port: int
    proc: subprocess.Popen
    log: Path


class Cluster:
    """A private Redis, `size` conformance-server instances using it, and the proxy in front of them."""

    def __init__(self, binary: Path, size: int, logs: Path, use_redis: bool, nginx: bool = False):
        self.binary, self.size, self.logs = binary, size, logs
        self.redis: PrivateRedis | None = None
        self.instances: list[Instance] = []
        self.proxy: subprocess.Popen | None = None
        self.proxy_port = 0
        self.proxy_log = logs / "proxy.log"
        self.use_redis = use_redis
        self.state_key = os.urandom(32).hex()
        self.nginx = nginx

    def start(self) -> "Cluster":
        if self.use_redis:
            self.redis = PrivateRedis.start(self.logs)
        for index in range(self.size):
            self.instances.append(self.start_instance(index))
        self.proxy_port = runner.free_port()
        if self.nginx:
            command = self.nginx_command()
        else:
            upstreams = [f"http://127.0.0.1:{i.port}" for i in self.instances]
            command = [sys.executable, str(HERE / "proxy.py"), "--port", str(self.proxy_port), *upstreams]
        with open(self.proxy_log, "ab") as out:
            self.proxy = runner.spawn(command, stdout=out, stderr=subprocess.STDOUT)
        self.wait_listening(self.proxy_port, self.proxy, "the proxy", self.proxy_log)
        return self

    def nginx_command(self) -> list[str]:
        """nginx with the README's scale-out/nginx.conf, pointed at this cluster, answering `X-Keel-Upstream`."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise Failure("--proxy nginx: nginx is not installed (apt-get install nginx)")
        conf = (HERE / "nginx.conf").read_text()
        servers = "".join(f"        server 127.0.0.1:{i.port};\n" for i in self.instances)
        conf, count = re.subn(r"(?m)^\s*server 127\.0\.0\.1:\d+;\n(?:\s*server 127\.0\.0\.1:\d+;\n)*", servers, conf)
        check(count == 1, "scale-out/nginx.conf: no upstream server lines to replace")
        conf, count = re.subn(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{self.proxy_port};", conf)
        check(count == 1, "scale-out/nginx.conf: no listen line to replace")
        # After a failed attempt $upstream_addr lists every address tried ("A, B"): the last one answered.
        index = "".join(f"        ~(^|\\s)127\\.0\\.0\\.1:{i.port}$ {i.index};\n" for i in self.instances)
        conf = conf.replace("    upstream keel {", f"    map $upstream_addr $keel_upstream {{\n{index}    }}\n\n"
                            "    upstream keel {", 1)
        conf = conf.replace("            proxy_pass http://keel;",
                            "            proxy_pass http://keel;\n            add_header X-Keel-Upstream $keel_upstream always;", 1)
        prefix = self.logs / "nginx"
        prefix.mkdir(exist_ok=True)
        (prefix / "nginx.conf").write_text(conf)
        return [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]

    def start_instance(self, index: int) -> Instance:
        port = runner.free_port()
        env = dict(os.environ, PORT=str(port), RUST_LOG=os.environ.get("RUST_LOG", "info"))
        env.pop("REDIS_URL", None)
        if self.redis:
            env["REDIS_URL"] = self.redis.url
        # One requestState key ring for the cluster, as a deployment configures it: each instance opens the
        # states the others sealed (modern-era input-required rounds).
        env["REQUEST_STATE_KEYS"] = self.state_key
        log = self.logs / f"instance-{index}.log"
        with open(log, "ab") as out:
            proc = runner.spawn([str(self.binary)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        # An instance that starts on a fresh Redis waits (7 s by default) for running instances to renew their
        # claims before it listens: hence wait_listening's generous bound.
        self.wait_listening(port, proc, f"instance {index}", log)
        return Instance(index, port, proc, log)

    @staticmethod
    def wait_listening(port: int, proc: subprocess.Popen, what: str, log: Path, wait_s: float = 40.0) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if runner.listening(port):
                return
            if proc.poll() is not None:
                raise Failure(f"{what} exited with code {proc.returncode} before listening; log {log}")
            time.sleep(0.05)
        raise Failure(f"{what} did not listen on port {port} within {wait_s:.0f} s; log {log}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/mcp"

    def kill(self, index: int) -> None:
        """kill -9: no shutdown, no goodbye to Redis or to the clients."""
        proc = self.instances[index].proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def crashed(self) -> list[str]:
        return [f"instance {i.index} exited with code {i.proc.returncode}" for i in self.instances
                if i.proc.poll() is not None and i.proc.returncode != -signal.SIGKILL]

    def stop(self) -> None:
        if self.proxy:
            runner.stop(self.proxy, grace=2.0)
        for instance in self.instances:
            runner.stop(instance.proc, grace=3.0)
        if self.redis:
            self.redis.stop()

    def logs_tail(self) -> list[str]:
        out = []
        for path in [self.proxy_log] + [i.log for i in self.instances]:
            lines = runner.tail(path, 12)
            if lines:
                out.append(f"--- {path} (last {len(lines)} lines)")
                out.extend("  | " + runner.one_line(line, 300) for line in lines)
        return out


# ------------------------------------------------------------------------------------------------ raw MCP client


@dataclass
class Event:
    id: str | None
    data: str

    def message(self) -> dict | None:
        try:
            value = json.loads(self.data) if self.data else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def sse_events(response: http.client.HTTPResponse):
    """The events of an SSE body as they arrive (a priming event has no data)."""
    event_id, data = None, []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if not line:
            if event_id is not None or data:
                yield Event(event_id, "\n".join(data))
            event_id, data = None, []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "data":
            data.append(value)


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, messages: list[dict]):
        self.status, self.headers, self.messages = status, headers, messages

    @property
    def upstream(self) -> str | None:
        return self.headers.get("x-keel-upstream")

    def result_for(self, request_id: int) -> dict:
        for message in self.messages:
            if message.get("id") == request_id and ("result" in message or "error" in message):
                check("result" in message, f"request {request_id} failed: {json.dumps(message)}")
                return message["result"]
        raise Failure(f"no answer to request {request_id} in {self.status} reply: {self.messages}")


class McpHttp:
    """Just enough of a legacy-era streamable HTTP client to control every request the tests make."""

    def __init__(self, url: str):
        self.url = url
        parts = url.split("/", 3)
        host, port = parts[2].split(":")
        self.host, self.port, self.path = host, int(port), "/" + parts[3]
        self.session: str | None = None
        self.next_id = 1

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.session:
            out["Mcp-Session-Id"] = self.session
            out["MCP-Protocol-Version"] = LEGACY
        out.update(extra or {})
        return out

    def open(self, method: str, body: dict | None, extra: dict[str, str] | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, self.path, body=payload, headers=self.headers(extra))
        return conn, conn.getresponse()

    def send(self, method: str, body: dict | None, extra: dict[str, str] | None = None) -> Reply:
        conn, response = self.open(method, body, extra)
        try:
            kind = response.headers.get("content-type", "")
            if kind.startswith("text/event-stream"):
                messages = [m for m in (e.message() for e in sse_events(response)) if m]
            else:
                raw = response.read()
                value = json.loads(raw) if raw.strip() and kind.startswith("application/json") else None
                messages = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
            return Reply(response.status, response.headers, messages)
        finally:
            conn.close()

    def request(self, method: str, params: dict | None = None) -> tuple[int, dict]:
        """A JSON-RPC request with the next id (not sent): (id, body)."""
        request_id = self.next_id
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            body["params"] = params
        return request_id, body

    def initialize(self) -> Reply:
        request_id, body = self.request("initialize", {
            "protocolVersion": LEGACY,
            "capabilities": {"elicitation": {"form": {}}},
            "clientInfo": {"name": "keel-scale-out", "version": "1"},
        })
        reply = self.send("POST", body)
        check(reply.status == 200, f"initialize: HTTP {reply.status} {reply.messages}")
        result = reply.result_for(request_id)
        check(result.get("protocolVersion") == LEGACY, f"initialize agreed on {result.get('protocolVersion')}")
        self.session = reply.headers.get("mcp-session-id")
        check(bool(self.session), "initialize: no Mcp-Session-Id")
        done = self.send("POST", {"jsonrpc": "2.0", "method": "notifications/initialized"})
        check(done.status == 202, f"notifications/initialized: HTTP {done.status}")
        return reply

    def call_tool(self, name: str, arguments: dict) -> tuple[Reply, dict]:
        request_id, body = self.request("tools/call", {"name": name, "arguments": arguments})
        reply = self.send("POST", body)
        check(reply.status == 200, f"tools/call {name}: HTTP {reply.status} {reply.messages} (upstream {reply.upstream})")
        return reply, reply.result_for(request_id)


def text_of(result: dict) -> str:
    return "".join(block.get("text", "") for block in result.get("content", []) if isinstance(block, dict))


SIMPLE_TEXT = "This is a simple text response for testing."


# --------------------------------------------------------------------------------------------------------- tests


@dataclass
class Context:
    args: argparse.Namespace
    binaries: dict[str, Path]
    logs: Path

    def cluster(self, name: str, size: int | None = None) -> Cluster:
        logs = self.logs / name
        logs.mkdir(parents=True, exist_ok=True)
        return Cluster(self.binaries["conformance-server"], size or self.args.instances, logs,
                       use_redis=not self.args.no_redis, nginx=self.args.proxy == "nginx")


def test_suite(ctx: Context, cluster: Cluster) -> None:
    tools = runner.ensure_toolchain()
    results = ctx.logs / "suite" / "results"
    run = runner.Run("server", LEGACY, [], complete=True, results_dir=results / f"server-{LEGACY}")
    run.scenarios = runner.parse_list(runner.list_scenarios_async(tools, "server", LEGACY), f"server @ {LEGACY}")
    run.results_dir.mkdir(parents=True, exist_ok=True)
    shared = "sharing one Redis" if cluster.redis else "without Redis"
    run.notes.append(f"through the round-robin proxy in front of {cluster.size} instance(s) {shared}")
    log = results / f"server-{LEGACY}.harness.log"
    cli = ["server", "--url", cluster.url, "--suite", "all", "--spec-version", LEGACY, "--timeout", "5000",
           "-o", str(run.results_dir)]
    started = time.monotonic()
    with open(log, "wb") as out:
        harness = runner.spawn(tools.command(*cli), env=tools.env(), stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        code = harness.wait(timeout=len(run.scenarios) * 7 + 120)
    except subprocess.TimeoutExpired:
        code = None
        run.errors.append("the harness did not finish in time and was killed")
    runner.stop(harness)
    if code not in (None, 0, 1):
        run.errors.append(f"the harness exited with code {code}")
    run.errors.extend(cluster.crashed())
    run.seconds = time.monotonic() - started
    run.harness_log = log
    run.record()
    score = [str(ctx.binaries["conformance-score"]), "score", "--expected", str(runner.EXPECTED_FILE),
             "--results", str(results)]
    scored = subprocess.run(score, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    print("\n".join("    " + line for line in scored.stdout.splitlines()), flush=True)
    check(scored.returncode == 0, f"conformance-score: exit {scored.returncode} (results in {results}){scored.stderr}")


def interop_venv() -> Path:
    """The interop venv of interop/run (same key), made with the same recipe when missing."""
    requirements = REPO / "interop" / "requirements.txt"
    pin = next((line.split("==", 1)[1].strip() for line in requirements.read_text().splitlines()
                if line.startswith("mcp==")), None)
    check(pin is not None, "interop/requirements.txt has no mcp== pin")
    def usable(name: str) -> bool:  # interop/run's pick_python: a pyenv shim may exist but not run
        probe = [name, "-c", "import sys; sys.exit(sys.version_info < (3, 10))"]
        return shutil.which(name) is not None and subprocess.run(probe, capture_output=True).returncode == 0

    base = next((p for p in ("python3.13", "python3.12", "python3.11", "python3.10", "python3") if usable(p)), None)
    check(base is not None, "no python3 for the interop venv")
    probe = subprocess.run([base, "-c", "import platform, sys; print(platform.python_version()); "
                            "print(sys.version, sys.executable)"], capture_output=True, text=True, check=True)
    version, identity = probe.stdout.split("\n", 1)
    digest = hashlib.sha256(requirements.read_bytes() + identity.encode()).hexdigest()[:16]
    dest = runner.cache_dir() / "interop" / f"venv-py{version}-mcp{pin}-{digest}"
    python = dest / "bin" / "python"
    if (dest / ".keel-installed").exists() and python.exists():
        return python
    say(f"setup: python venv with mcp=={pin} into {dest}")
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(dest)], check=True, stdin=subprocess.DEVNULL)
    subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r",
                    str(requirements)], check=True, stdin=subprocess.DEVNULL, timeout=900)
    (dest / ".keel-installed").write_text(f"mcp {pin} {digest}\n")
    return python


def test_python_sdk(ctx: Context, cluster: Cluster) -> None:
    python = interop_venv()
    done = subprocess.run([str(python), str(HERE / "py_client.py"), cluster.url, str(cluster.size)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    print("\n".join("    " + line for line in done.stdout.splitlines() if line.strip()), flush=True)
    check(done.returncode == 0, f"py_client exit {done.returncode}; stderr: {runner.one_line(done.stderr[-600:], 600)}")


def test_stream_500(ctx: Context, cluster: Cluster) -> None:
    total, drop_at, answer = 500, 250, "forty-two"
    client = McpHttp(cluster.url)
    client.initialize()
    request_id, body = client.request("tools/call", {
        "name": "test_progress_stream", "arguments": {"count": total, "askAfter": drop_at},
        "_meta": {"progressToken": "stream-500"},
    })
    seen: list[int] = []
    asked: list[dict] = []
    result: dict | None = None

    def take(event: Event) -> None:
        nonlocal result
        message = event.message()
        if not message:
            return
        if message.get("method") == "notifications/progress":
            seen.append(int(message["params"]["progress"]))
        elif message.get("method") == "elicitation/create":
            asked.append(message)
        elif message.get("id") == request_id:
            check("result" in message, f"the tool failed: {json.dumps(message)}")
            result = message["result"]

    # Instance A: the call's own stream, read up to the 250th progress notification, then dropped.
    conn, response = client.open("POST", body)
    on_a = response.headers.get("x-keel-upstream")
    check(response.status == 200, f"tools/call: HTTP {response.status}")
    check(response.headers.get("content-type", "").startswith("text/event-stream"), "tools/call did not stream")
    last_id = None
    for event in sse_events(response):
        take(event)
        last_id = event.id or last_id
        if len(seen) == drop_at:
            break
    conn.close()
    check(len(seen) == drop_at, f"the stream ended after {len(seen)} progress notifications, before {drop_at}")
    check(last_id is not None, "the events carry no id: nothing to resume from")

    # Instance C: resume after the last event seen; the elicitation comes here, its answer goes to B.
    conn, response = client.open("GET", None, {"Last-Event-ID": last_id, "Accept": "text/event-stream"})
    on_c = response.headers.get("x-keel-upstream")
    check(response.status == 200, f"GET with Last-Event-ID {last_id}: HTTP {response.status} (upstream {on_c})")
    on_b = None
    try:
        for event in sse_events(response):
            take(event)
            if asked and on_b is None:
                question = asked[0]
                reply = client.send("POST", {"jsonrpc": "2.0", "id": question["id"],
                                             "result": {"action": "accept", "content": {"answer": answer}}})
                on_b = reply.upstream
                check(reply.status == 202, f"the elicitation answer: HTTP {reply.status} (upstream {on_b})")
            if result is not None:
                break
    finally:
        conn.close()
    check(result is not None, f"the resumed stream ended without the result ({len(seen)} progress seen)")
    check(len(asked) == 1, f"the elicitation arrived {len(asked)} times")
    duplicates = len(seen) - len(set(seen))
    missing = sorted(set(range(1, total + 1)) - set(seen))
    check(duplicates == 0 and not missing and len(seen) == total,
          f"progress: {len(seen)} received, {duplicates} duplicates, missing {missing[:10]}")
    check(seen == sorted(seen), "progress notifications arrived out of order")
    expected = f"sent {total} progress notifications; answer={answer}"
    check(text_of(result) == expected, f"the tool said {text_of(result)!r}, expected {expected!r}")
    if cluster.size >= 3:
        check(len({on_a, on_b, on_c}) == 3, f"A={on_a}, B={on_b}, C={on_c}: expected three different instances")
    say(f"  progress 1..{total} exactly once; called on {on_a}, resumed on {on_c}, answered on {on_b}")


def test_kill_instance(ctx: Context, cluster: Cluster) -> None:
    check(cluster.size >= 2, "needs at least two instances")
    client = McpHttp(cluster.url)
    client.initialize()
    # Mid-run: a call is streaming from the victim (it waits for an answer) when the victim is killed.
    _, body = client.request("tools/call", {"name": "test_progress_stream", "arguments": {"count": 10, "askAfter": 5},
                                            "_meta": {"progressToken": "doomed"}})
    conn, response = client.open("POST", body)
    victim = int(response.headers.get("x-keel-upstream") or 0)
    check(response.status == 200, f"the streaming call: HTTP {response.status}")
    last_id = None
    for event in sse_events(response):
        last_id = event.id or last_id
        message = event.message() or {}
        if message.get("method") == "elicitation/create":
            break
    cluster.kill(victim)
    conn.close()
    session = client.session
    served = set()
    for attempt in range(cluster.size + 1):  # every survivor, and the dead one's turn
        reply, result = client.call_tool("test_simple_text", {})
        check(text_of(result) == SIMPLE_TEXT, f"call {attempt + 1} after the kill: {text_of(result)!r}")
        check(client.session == session, "the session changed")
        served.add(reply.upstream)
    check(None not in served, f"a call's answer does not say which instance gave it: {served}")
    check(str(victim) not in served, f"the killed instance {victim} answered?")
    say(f"  killed instance {victim} mid-call; {cluster.size + 1} calls in the same session answered by "
        f"{sorted(served)} without a new initialize")
    # The client resumes the killed call's stream elsewhere, reconnecting as often as it is let go: once the
    # dead instance's heartbeat lapsed (15 s), nothing more is waited for, and the stream is unknown (404).
    check(last_id is not None, "the killed call's events carry ids")
    started, resumptions = time.monotonic(), 0
    while True:
        resumptions += 1
        elapsed = time.monotonic() - started
        check(elapsed < 45, f"the killed call's stream still resumes after {elapsed:.0f} s ({resumptions} times)")
        conn, response = client.open("GET", None, {"Last-Event-ID": last_id, "Accept": "text/event-stream"})
        try:
            if response.status == 404:
                break
            check(response.status == 200, f"resuming the killed call's stream: HTTP {response.status}")
            for event in sse_events(response):
                last_id = event.id or last_id
        finally:
            conn.close()
    say(f"  its stream, resumed elsewhere, ended for good after {time.monotonic() - started:.1f} s "
        f"({resumptions} resumptions)")


def test_delete_session(ctx: Context, cluster: Cluster) -> None:
    client = McpHttp(cluster.url)
    client.initialize()
    client.call_tool("test_simple_text", {})
    reply = client.send("DELETE", None)
    check(reply.status in (200, 204), f"DELETE: HTTP {reply.status}")
    for _ in range(cluster.size):  # every instance must have forgotten it
        _, body = client.request("tools/call", {"name": "test_simple_text", "arguments": {}})
        after = client.send("POST", body)
        check(after.status == 404, f"a call in the deleted session: HTTP {after.status} on instance {after.upstream}")
    say(f"  deleted on instance {reply.upstream}; every instance answers 404 after")


def test_redis_restart(ctx: Context, cluster: Cluster) -> None:
    check(cluster.redis is not None, "needs Redis (drop --no-redis)")
    before = McpHttp(cluster.url)
    before.initialize()
    before.call_tool("test_simple_text", {})
    cluster.redis.stop()

    down = McpHttp(cluster.url)
    _, body = down.request("initialize", {"protocolVersion": LEGACY, "capabilities": {},
                                          "clientInfo": {"name": "keel-scale-out", "version": "1"}})
    reply = down.send("POST", body)
    check(reply.status == 503, f"a new session while Redis is down: HTTP {reply.status}, expected 503")
    check(reply.headers.get("retry-after") is not None, "the 503 has no Retry-After")
    stateless_id, stateless = down.request("tools/call", {
        "name": "test_simple_text", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                  "io.modelcontextprotocol/clientCapabilities": {},
                  "io.modelcontextprotocol/clientInfo": {"name": "keel-scale-out", "version": "1"}},
    })
    reply = down.send("POST", stateless, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
                                          "Mcp-Name": "test_simple_text"})
    check(reply.status == 200, f"a stateless call while Redis is down: HTTP {reply.status}")
    check(text_of(reply.result_for(stateless_id)) == SIMPLE_TEXT, "the stateless call's answer")
    say("  Redis down: new session 503 + Retry-After, stateless call served")

    cluster.redis.restart()  # empty: nothing was persisted
    deadline = time.monotonic() + 30
    while True:  # each instance reconnects on its own; a 503 says when to try again (with a new session)
        after = McpHttp(cluster.url)
        try:
            after.initialize()
            break
        except Failure as err:
            if time.monotonic() > deadline:
                raise Failure(f"no new session 30 s after Redis came back: {err}") from err
            time.sleep(0.2)
    served = set()
    for _ in range(2 * cluster.size):
        reply, result = after.call_tool("test_simple_text", {})
        check(text_of(result) == SIMPLE_TEXT, f"after the restart: {text_of(result)!r}")
        served.add(reply.upstream)
    check(len(served) == cluster.size, f"only instances {sorted(served)} answered after the restart")
    check(not cluster.crashed(), f"{cluster.crashed()}")
    say(f"  Redis back: a new session served by every instance {sorted(served)}, no instance restarted")


TESTS = {
    "suite": test_suite,
    "python-sdk": test_python_sdk,
    "stream-500": test_stream_500,
    "kill-instance": test_kill_instance,
    "delete-session": test_delete_session,
    "redis-restart": test_redis_restart,
}


# ---------------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scale-out/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tests", nargs="*", metavar="TEST", help=f"run only these ({', '.join(TESTS)})")
    p.add_argument("--instances", type=int, default=3, help="conformance-server instances (default %(default)s)")
    p.add_argument("--proxy", choices=("python", "nginx"), default="python",
                   help="the round-robin proxy: scale-out/proxy.py (default) or nginx with scale-out/nginx.conf")
    p.add_argument("--include-ignored", action="store_true", help="also run the tests marked `needs`")
    p.add_argument("--no-redis", action="store_true",
                   help="start the instances without REDIS_URL (a check of the harness itself with --instances 1)")
    args = p.parse_args(argv)
    unknown = [t for t in args.tests if t not in TESTS]
    if unknown:
        p.error(f"unknown test(s) {unknown}; known: {', '.join(TESTS)}")
    if args.instances < 1:
        p.error("--instances must be at least 1")
    return args


class Timeout(Exception):
    pass


def on_alarm(_signum, _frame):
    raise Timeout(f"the test did not finish within {TEST_TIMEOUT} s")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    selected = args.tests or list(TESTS)
    if not args.no_redis:
        binary, why = ensure_redis_server()
        if not binary:
            bar = "#" * 100
            required = os.environ.get("KEEL_REQUIRE_REDIS") == "1"
            verdict = "FAILED (KEEL_REQUIRE_REDIS=1)" if required else "SKIPPED"
            print(f"{bar}\n### scale-out {verdict}: {why}\n### None of {', '.join(selected)} ran.\n{bar}", flush=True)
            return 1 if required else 0
    runnable = [name for name in selected if args.include_ignored or not NEEDS.get(name)]
    binaries = runner.build_binaries() if runnable else {}
    logs = runner.cache_dir() / "scale-out" / "logs" / time.strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    ctx = Context(args, binaries, Path(tempfile.mkdtemp(prefix="run-", dir=logs)))
    failed, passed, ignored = [], [], []
    signal.signal(signal.SIGALRM, on_alarm)
    for name in selected:
        if NEEDS.get(name) and not args.include_ignored:
            say(f"{name} ... IGNORED ({NEEDS[name]})")
            ignored.append(name)
            continue
        say(f"{name} ...")
        cluster = ctx.cluster(name)
        started = time.monotonic()
        signal.alarm(TEST_TIMEOUT)
        try:
            cluster.start()
            TESTS[name](ctx, cluster)
            crashed = cluster.crashed()
            check(not crashed, "; ".join(crashed))
            say(f"{name} ... ok ({time.monotonic() - started:.1f} s)")
            passed.append(name)
        except Exception as err:  # noqa: BLE001 - any error fails this test, the others still run
            say(f"{name} ... FAILED ({type(err).__name__}: {err})")
            if not isinstance(err, (Failure, Timeout)):
                traceback.print_exc()
            for line in cluster.logs_tail():
                print("    " + line, flush=True)
            failed.append(name)
        finally:
            signal.alarm(0)
            cluster.stop()
    kept = f"; logs in {ctx.logs}" if failed else ""
    say(f"{len(passed)} passed, {len(failed)} failed, {len(ignored)} ignored{kept}")
    if not failed:
        shutil.rmtree(ctx.logs, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except runner.SetupError as err:
        print(f"scale-out/run: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:
        print(f"scale-out/run: interrupted ({err})", file=sys.stderr)
        sys.exit(130)
    finally:
        runner.stop_all()
