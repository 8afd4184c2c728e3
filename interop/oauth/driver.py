#!/usr/bin/env python3
"""Logs Keel's OAuth client (the `oauth_client` example) into a real authorization server, run after run, playing
the browser, and checks what both sides did.

    driver.py --keel EXE --logs DIR -- SERVER_COMMAND...

SERVER_COMMAND is interop/oauth/py_auth_server.py or ts_auth_server.mjs (with its interpreter and arguments): it
prints `ready AS_URL MCP_URL`, takes `--no-offline-access`, and serves /_test/events, /_test/expire and /_test/revoke
on AS_URL (see those files). The driver starts it twice, once as is and once with --no-offline-access.

Every Keel run is `EXE MCP_URL add '{"a":2,"b":3}'` with KEEL_OAUTH_NO_BROWSER=1 and KEEL_TOKEN_DIR in a fresh
temporary folder. When Keel prints `Open this URL in your browser to authorize:` and the URL on the next line on
stderr, the driver GETs that URL and follows the redirects (the authorization server approves at once and sends the
"browser" to Keel's loopback callback), as a user's browser would.

Scenarios, in order (each prints `scenario NAME ok` or `scenario NAME FAILED: why`):

  first-login              browser prompt once; registration, one authorization, one code exchange; `add` -> 5
  no-refresh-storm         no refresh in that first run (a short-lived token is not refreshed right after it was
                           issued)
  offline-access           the authorization request asked for offline_access, as the server lists it (SEP-2207)
  reuse                    second run: no prompt, no request to the authorization server's /authorize, /token or
                           /register, no 401 from the MCP server
  refresh-on-401           the server stopped accepting the access token (and now issues 2-second ones): Keel takes
                           the 401 and refreshes, no prompt, no second refresh before the new token expires
  refresh-after-expiry     once that 2-second token has expired: Keel refreshes before sending it (the MCP server
                           never sees the expired token), no prompt
  reauthorize-after-revoke every grant revoked: the refresh fails and Keel authorizes again through the browser
                           and the authorization server accepts the request (Keel's loopback listener binds a new
                           port each run unless it reuses the registered one)
  reauthorize-new-port     revoked again, and the redirect port of the stored registration is taken: Keel
                           authorizes on another port, and the server (which matches redirect URIs exactly) accepts
                           it, so Keel registered that redirect URI first
  offline-access-not-advertised  a server that does not list offline_access: first login does not ask for it
  token-file               the token directory is 0700 and every file in it 0600
  no-token-in-output       no access token, refresh token, client secret or authorization code the server issued
                           appears in anything Keel printed

Each Keel run is bounded (KEEL_OAUTH_RUN_TIMEOUT, default 40 s), the server start too
(KEEL_INTEROP_SERVER_START_TIMEOUT, default 20 s); servers are stopped at the end, on error and on SIGTERM/SIGINT.
Keel's stdout/stderr of each run and the server's log go to DIR. Exit 0 when every scenario passed, 1 otherwise.
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

PROMPT = "Open this URL in your browser to authorize:"
RUN_TIMEOUT = float(os.environ.get("KEEL_OAUTH_RUN_TIMEOUT", "40"))
START_TIMEOUT = float(os.environ.get("KEEL_INTEROP_SERVER_START_TIMEOUT", "20"))
HTTP_TIMEOUT = 10.0
# Seconds: the lifetime of the tokens issued for the expiry scenarios, short enough that the expiry scenario runs
# while the expired token is still young (a client must not let "just issued" override "expired").
SHORT_TTL = 2
TOOL_ARGS = '{"a":2,"b":3}'


class Failed(Exception):
    """A scenario's expectation did not hold (the message says which, with what the servers answered)."""


def http_request(method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise Failed(f"refusing to fetch {url}: the test talks to 127.0.0.1 over http only")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=data, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(1 << 20)
    finally:
        conn.close()


def browse(url: str) -> list[dict[str, Any]]:
    """GET `url`, following up to 5 redirects; one entry per hop (a browser with no user: consent is automatic)."""
    hops: list[dict[str, Any]] = []
    for _ in range(6):
        try:
            status, headers, body = http_request("GET", url)
        except (OSError, http.client.HTTPException, Failed) as error:
            hops.append({"url": url, "error": f"{type(error).__name__}: {error}"})
            break
        hop = {"url": url, "status": status, "body": body[:600].decode("utf-8", "replace")}
        hops.append(hop)
        location = headers.get("location")
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        break
    return hops


@dataclass
class Run:
    """One run of Keel's example."""

    label: str
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    prompts: int = 0
    hops: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # what the servers saw during the run
    timed_out: bool = False

    def where(self, side: str, path: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["side"] == side and e["path"] == path]

    def grants(self, grant_type: str) -> list[dict[str, Any]]:
        return [e for e in self.where("as", "/token") if (e.get("form") or {}).get("grant_type") == grant_type]

    def as_errors(self) -> str:
        errors = [e for e in self.events if e["side"] == "as" and e.get("status", 0) >= 400]
        return "; ".join(
            f"{e['method']} {e['path']} -> {e['status']} {json.dumps(e.get('response', e.get('response_text')))}"
            for e in errors
        )

    def describe(self) -> str:
        """What went on, for a failure message: exit, Keel's last stderr line, the server's error answers."""
        bits = ["timed out" if self.timed_out else f"exit {self.returncode}"]
        last = [line for line in self.stderr.splitlines() if line.strip()]
        if last:
            bits.append(f"keel stderr: {last[-1][:300]}")
        if self.as_errors():
            bits.append(f"authorization server answered: {self.as_errors()}")
        return "; ".join(bits)


class Server:
    """The authorization server + MCP server process under test."""

    def __init__(self, command: list[str], log_path: str) -> None:
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.as_url, self.mcp_url = self._wait_ready()
        self.seen = 0

    def _wait_ready(self) -> tuple[str, str]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failed(f"the server did not print its ready line within {START_TIMEOUT:.0f}s")
            readable, _, _ = select.select([self.process.stdout], [], [], remaining)
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise Failed(f"the server exited before it was ready (exit {self.process.wait()})")
                line += chunk
        words = line.decode().split()
        if len(words) != 3 or words[0] != "ready":
            raise Failed(f"the server printed {line!r}, not `ready AS_URL MCP_URL`")
        return words[1], words[2]

    def control(self, path: str, body: Any = None) -> Any:
        status, _, data = http_request("POST" if body is not None else "GET", self.as_url + path, body)
        if status != 200:
            raise Failed(f"{path} answered {status}: {data[:300]!r}")
        return json.loads(data)

    def new_events(self) -> list[dict[str, Any]]:
        events = self.control("/_test/events")
        fresh, self.seen = events[self.seen :], len(events)
        return fresh

    def metadata(self) -> dict[str, Any]:
        status, _, data = http_request("GET", self.as_url + "/.well-known/oauth-authorization-server")
        if status != 200:
            raise Failed(f"authorization server metadata answered {status}")
        return json.loads(data)

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group of a server started with start_new_session, SIGKILL after 5 s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


class Keel:
    """Runs the example with one token directory, playing the browser when it asks."""

    def __init__(self, exe: str, token_dir: str, logs: str, prefix: str) -> None:
        self.exe, self.token_dir, self.logs, self.prefix = exe, token_dir, logs, prefix
        self.runs: list[Run] = []

    def run(self, server: Server, label: str, tool: tuple[str, ...] = ("add", TOOL_ARGS)) -> Run:
        """One run of `EXE MCP_URL TOOL [JSON_ARGS]` (`server` needs only `mcp_url` and `new_events()`)."""
        run = Run(label)
        # Loopback only, whatever proxy the environment names; dynamic registration, not a CIMD URL from outside.
        env = dict(os.environ, KEEL_OAUTH_NO_BROWSER="1", KEEL_TOKEN_DIR=self.token_dir, NO_PROXY="127.0.0.1")
        env.pop("KEEL_CLIENT_METADATA_URL", None)
        server.new_events()  # only this run's events count
        process = subprocess.Popen(
            [self.exe, server.mcp_url, *tool],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        LIVE.add(process)
        out: list[bytes] = []
        err: list[str] = []

        def read_stdout() -> None:
            assert process.stdout is not None
            out.append(process.stdout.read())

        def read_stderr() -> None:
            assert process.stderr is not None
            expect_url = False
            for raw in process.stderr:
                line = raw.decode("utf-8", "replace")
                err.append(line)
                if expect_url:
                    expect_url = False
                    run.hops.extend(browse(line.strip()))
                    final = run.hops[-1] if run.hops else {}
                    if urlsplit(final.get("url", "")).path != "/callback" or final.get("status") != 200:
                        # The authorization server did not send the browser back to Keel: nothing will.
                        kill(process)
                elif line.strip() == PROMPT:
                    run.prompts += 1
                    expect_url = True

        readers = [threading.Thread(target=read_stdout), threading.Thread(target=read_stderr)]
        for reader in readers:
            reader.start()
        try:
            run.returncode = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            run.timed_out = True
            kill(process)
            run.returncode = process.wait()
        for reader in readers:
            reader.join(timeout=HTTP_TIMEOUT * 7)
        LIVE.discard(process)
        run.stdout = b"".join(out).decode("utf-8", "replace")
        run.stderr = "".join(err)
        run.events = server.new_events()
        base = os.path.join(self.logs, f"{self.prefix}{len(self.runs) + 1}-{label}")
        with open(base + ".out", "w", encoding="utf-8") as handle:
            handle.write(run.stdout)
        with open(base + ".err", "w", encoding="utf-8") as handle:
            handle.write(run.stderr)
        with open(base + ".events.json", "w", encoding="utf-8") as handle:
            json.dump({"browser": run.hops, "events": run.events}, handle, indent=1)
        self.runs.append(run)
        return run


# Keel processes running now, killed if the driver has to stop in the middle of a run.
LIVE: set[subprocess.Popen[bytes]] = set()


def kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def tool_worked(run: Run) -> None:
    """The run exited 0 and printed its protocol, the `add` tool and a result whose sum is 5."""
    expect(run.returncode == 0 and not run.timed_out, f"the run failed ({run.describe()})")
    lines = run.stdout.splitlines()
    expect(any(line.startswith("protocol ") for line in lines), "no `protocol` line on stdout")
    expect("tool add" in lines, "no `tool add` line on stdout")
    results = [line[len("result ") :] for line in lines if line.startswith("result ")]
    expect(len(results) == 1, f"expected one `result` line, got {len(results)}")
    try:
        result = json.loads(results[0])
    except ValueError:
        raise Failed(f"result is not JSON: {results[0][:200]}") from None
    sums = [(result.get("structuredContent") or {}).get("sum")]
    sums += [b.get("text") for b in result.get("content", []) if b.get("type") == "text"]
    expect(any(str(s) in ("5", "5.0") for s in sums), f"add(2, 3) did not give 5: {results[0][:300]}")


def browser_reached_keel(run: Run) -> None:
    """The browser was sent back to Keel's loopback callback with a code (not an error)."""
    expect(run.prompts >= 1, f"Keel never asked for the browser ({run.describe()})")
    expect(bool(run.hops), "the URL after the prompt was never fetched")
    authorize = run.where("as", "/authorize")
    answers = "; ".join(
        f"{e['status']} {e.get('location') or json.dumps(e.get('response', e.get('response_text')))}" for e in authorize
    )
    final = run.hops[-1]
    parts = urlsplit(final["url"])
    query = parse_qs(parts.query)
    expect(
        parts.hostname == "127.0.0.1" and parts.path == "/callback" and "code" in query and "error" not in query,
        f"the authorization server did not send the browser back to Keel with a code: /authorize answered "
        f"{answers or 'nothing'}; last hop {final.get('url')} -> {final.get('status', final.get('error'))}",
    )
    expect(final.get("status") == 200, f"Keel's callback answered {final.get('status', final.get('error'))}")


def one_prompt(run: Run) -> None:
    expect(run.prompts == 1, f"expected one browser prompt, got {run.prompts} ({run.describe()})")


def logged_in(run: Run, context: str = "") -> None:
    """A browser login: the server sent the browser back with a code, the tool call worked, one prompt only.
    `context` prefixes the failure message."""
    try:
        browser_reached_keel(run)
        tool_worked(run)
        one_prompt(run)
    except Failed as failure:
        raise Failed(f"{context}{failure}") from None


def requested_scopes(run: Run) -> list[str]:
    authorize = run.where("as", "/authorize")
    expect(len(authorize) >= 1, "the authorization server saw no authorization request")
    return (authorize[-1]["query"].get("scope") or "").split()


def redirect_port(run: Run) -> int | None:
    """The port of the redirect URI in the run's last authorization request, as the server received it."""
    authorize = run.where("as", "/authorize")
    return urlsplit(authorize[-1]["query"].get("redirect_uri", "")).port if authorize else None


def no_browser(run: Run) -> None:
    expect(run.prompts == 0, f"Keel asked for the browser ({run.describe()})")
    expect(not run.where("as", "/authorize"), "the authorization server saw an authorization request")


def refreshed(run: Run) -> None:
    """The run refreshed (every refresh succeeded), exchanged no code, and refreshed again only once the token it
    got had (nearly: whole-second clocks) expired, never in a storm."""
    refreshes = run.grants("refresh_token")
    expect(
        bool(refreshes) and all(e.get("status") == 200 for e in refreshes),
        f"expected successful refreshes, got {[e.get('status') for e in refreshes]} ({run.describe()})",
    )
    expect(not run.grants("authorization_code"), "an authorization code was exchanged")
    for earlier, later in zip(refreshes, refreshes[1:]):
        lifetime = earlier["response"]["expires_in"]
        gap = later["time"] - earlier["time"]
        expect(gap >= lifetime - 1, f"refreshed again {gap:.1f}s after a refresh that gave a {lifetime}s token")


class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: list[tuple[str, str | None]] = []
        self.passed: set[str] = set()

    def scenario(self, name: str, needs: list[str], check: Any) -> None:
        missing = [n for n in needs if n not in self.passed]
        why: str | None
        if missing:
            why = f"not run: {', '.join(missing)} failed"
        else:
            try:
                check()
                why = None
            except Failed as failure:
                why = str(failure)
            except Exception as error:  # a driver bug or an odd answer: this scenario fails, the others still run
                why = f"{type(error).__name__}: {error}"
        if why is None:
            self.passed.add(name)
            print(f"scenario {name} ok", flush=True)
        else:
            print(f"scenario {name} FAILED: {why}", flush=True)
        self.results.append((name, why))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keel", required=True, help="the oauth_client example executable")
    parser.add_argument("--logs", required=True, help="folder for Keel's output and the server log")
    parser.add_argument("server", nargs="+", help="the server command (after --)")
    args = parser.parse_args()
    os.makedirs(args.logs, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    suite = Suite(args)
    servers: list[Server] = []
    runs: list[Run] = []
    work = tempfile.mkdtemp(prefix="keel-oauth-interop-")
    token_dir = os.path.join(work, "tokens")  # Keel creates it
    try:
        try:
            server = Server(args.server, os.path.join(args.logs, "server.log"))
            servers.append(server)
        except Failed as failure:
            print(f"scenario first-login FAILED: {failure}", flush=True)
            return 1
        keel = Keel(args.keel, token_dir, args.logs, "")
        advertised = "offline_access" in (server.metadata().get("scopes_supported") or [])
        first = keel.run(server, "first-login")

        def first_login() -> None:
            logged_in(first)
            expect(len(first.where("as", "/register")) == 1, "expected one dynamic client registration")
            codes = first.grants("authorization_code")
            expect(
                len(codes) == 1 and codes[0].get("status") == 200,
                f"expected one successful code exchange, got {[e.get('status') for e in codes]} ({first.describe()})",
            )

        suite.scenario("first-login", [], first_login)

        def no_refresh_storm() -> None:
            refreshes = first.grants("refresh_token")
            expect(
                not refreshes,
                f"{len(refreshes)} refresh(es) within the first run, right after the code exchange, of a token that "
                f"lives {(first.grants('authorization_code') or [{}])[-1].get('response', {}).get('expires_in')}s",
            )

        suite.scenario("no-refresh-storm", ["first-login"], no_refresh_storm)

        def offline_access() -> None:
            expect(advertised, "the server under test does not list offline_access")
            scopes = requested_scopes(first)
            expect("offline_access" in scopes, f"offline_access is advertised but was not requested: scope={scopes}")

        suite.scenario("offline-access", [], offline_access)

        def reuse() -> None:
            run = keel.run(server, "reuse")
            no_browser(run)
            tool_worked(run)
            touched = [e["path"] for e in run.events if e["side"] == "as" and e["path"] in ("/token", "/register")]
            expect(not touched, f"the stored tokens were not reused: Keel called {touched}")
            rejected = [e for e in run.where("rs", "/mcp") if e.get("status") == 401]
            expect(not rejected, f"the MCP server answered 401 {len(rejected)} time(s)")

        suite.scenario("reuse", ["first-login"], reuse)

        def refresh_on_401() -> None:
            server.control("/_test/expire", {"advertise_ttl": SHORT_TTL})
            run = keel.run(server, "refresh-on-401")
            no_browser(run)
            refreshed(run)
            tool_worked(run)
            expect(
                any(e.get("status") == 401 for e in run.where("rs", "/mcp")),
                "the MCP server never answered 401 (the scenario's premise)",
            )

        suite.scenario("refresh-on-401", ["first-login"], refresh_on_401)

        def refresh_after_expiry() -> None:
            issued = [e for e in keel.runs[-1].grants("refresh_token") if e.get("status") == 200]
            expect(bool(issued), "not run: the previous run left no refreshed token to let expire")
            previous = issued[-1]
            stale = previous["response"]["access_token"]
            expect(
                previous["response"].get("expires_in") == SHORT_TTL,
                f"the server issued a token for {previous['response'].get('expires_in')}s, not {SHORT_TTL}s",
            )
            expires = previous["time"] + previous["response"]["expires_in"]
            # The token's own lifetime is what this scenario is about; one more second for clients that keep
            # expiry in whole seconds.
            while time.time() < expires + 1.0:
                time.sleep(min(0.2, max(0.0, expires + 1.0 - time.time())))
            run = keel.run(server, "refresh-after-expiry")
            no_browser(run)
            refreshed(run)
            tool_worked(run)
            sent = [e for e in run.where("rs", "/mcp") if e.get("bearer") == stale]
            if sent:
                age = sent[0]["time"] - previous["time"]
                raise Failed(
                    f"Keel sent the access token it knew had expired (expires_in={previous['response']['expires_in']}, "
                    f"sent {age:.1f}s after it was issued; the MCP server answered {sent[0].get('status')})"
                )

        suite.scenario("refresh-after-expiry", ["first-login"], refresh_after_expiry)

        def reauthorize_after_revoke() -> None:
            server.control("/_test/expire", {"advertise_ttl": 60})
            server.control("/_test/revoke", {})
            run = keel.run(server, "reauthorize-after-revoke")
            logged_in(run, f"redirect port {redirect_port(first)} at first login, {redirect_port(run)} now: ")

        suite.scenario("reauthorize-after-revoke", ["first-login"], reauthorize_after_revoke)

        def reauthorize_new_port() -> None:
            registered = redirect_port(keel.runs[-1]) or redirect_port(first)
            expect(registered is not None, "no earlier authorization request to take the redirect port of")
            server.control("/_test/revoke", {})
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
                # SO_REUSEADDR: Keel's callback connection may linger in TIME_WAIT; a listener still excludes Keel's.
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    squatter.bind(("127.0.0.1", registered))
                    squatter.listen(1)
                except OSError as error:
                    raise Failed(f"could not take port {registered} to force a new redirect URI: {error}") from None
                run = keel.run(server, "reauthorize-new-port")
            logged_in(run, f"registered redirect port {registered} taken, {redirect_port(run)} now: ")
            expect(redirect_port(run) != registered, f"Keel's redirect used the taken port {registered}")

        suite.scenario("reauthorize-new-port", ["first-login"], reauthorize_new_port)

        def not_advertised() -> None:
            quiet = Server(args.server + ["--no-offline-access"], os.path.join(args.logs, "server-no-offline.log"))
            servers.append(quiet)
            expect(
                "offline_access" not in (quiet.metadata().get("scopes_supported") or []),
                "--no-offline-access still lists offline_access",
            )
            other = Keel(args.keel, os.path.join(work, "tokens-no-offline"), args.logs, "no-offline-")
            run = other.run(quiet, "first-login")
            runs.append(run)
            logged_in(run)
            scopes = requested_scopes(run)
            expect("offline_access" not in scopes, f"offline_access is not advertised but was requested: {scopes}")

        suite.scenario("offline-access-not-advertised", [], not_advertised)

        def token_file() -> None:
            expect(os.path.isdir(token_dir), f"Keel did not create {token_dir}")
            mode = stat.S_IMODE(os.stat(token_dir).st_mode)
            expect(mode == 0o700, f"the token directory is {mode:o}, not 700")
            files = []
            for root, dirs, names in os.walk(token_dir):
                for name in dirs:
                    sub = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
                    expect(sub == 0o700, f"{name} in the token directory is {sub:o}, not 700")
                files += [os.path.join(root, name) for name in names]
            expect(bool(files), "no file in the token directory")
            for path in files:
                mode = stat.S_IMODE(os.stat(path).st_mode)
                expect(mode == 0o600, f"{os.path.relpath(path, token_dir)} is {mode:o}, not 600")

        suite.scenario("token-file", ["first-login"], token_file)

        def no_token_in_output() -> None:
            secrets = set()
            for run in keel.runs + runs:
                for event in run.events:
                    response = event.get("response")
                    if isinstance(response, dict):
                        for key in ("access_token", "refresh_token", "client_secret"):
                            if isinstance(response.get(key), str):
                                secrets.add(response[key])
                    code = parse_qs(urlsplit(event.get("location", "")).query).get("code")
                    if code:
                        secrets.add(code[0])
            secrets = {s for s in secrets if len(s) >= 8}
            expect(bool(secrets), "the server issued nothing to look for")
            for run in keel.runs + runs:
                for stream, text in (("stdout", run.stdout), ("stderr", run.stderr)):
                    leaked = [s for s in secrets if s in text]
                    expect(not leaked, f"run {run.label}: a token the server issued appears on Keel's {stream}")

        suite.scenario("no-token-in-output", [], no_token_in_output)
    finally:
        for process in list(LIVE):
            kill(process)
        for server in servers:
            server.stop()
        # The token files hold live test tokens of servers that are gone now; nothing to keep.
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(why is None for _, why in suite.results) else 1


if __name__ == "__main__":
    sys.exit(main())
