#!/usr/bin/env python3
"""Logs a client into Keel's `protected_server` example (an OAuth resource server verifying JWTs against a JWKS)
with tokens from interop/oauth/jwt_auth_server.py, and checks what every side did.

    protected_driver.py --client keel --keel EXE --protected EXE --python PY --logs DIR
    protected_driver.py --client python --protected EXE --python PY --logs DIR

Starts the authorization server (`--first-grant notes:read`: a client's first authorization is granted only
`notes:read`), `protected_server --port P --issuer AS --jwks-url AS/jwks --resource http://127.0.0.1:T/mcp`, and
interop/httptap.py on T in front of P, which records every HTTP exchange between the client and the MCP server
(DIR/wire). The client talks to T. Then:

  --client keel: Keel's `oauth_client` example, KEEL_OAUTH_NO_BROWSER=1, one token directory, run three times
  (interop/oauth/driver.py plays the browser): `whoami`, then `add_note {"text":...}`, then `whoami`.
  --client python: interop/oauth/protected_py_client.py (the Python SDK's OAuthClientProvider), one session:
  `whoami`, `add_note`, `whoami`.

Scenarios (each prints `scenario NAME ok` or `scenario NAME FAILED: why`):

  discovery            the first MCP request was answered 401 with `WWW-Authenticate: Bearer resource_metadata=`
                       naming the path-inserted well-known URL, which the client then fetched (200), and the
                       authorization request carried that metadata's `resource` (the MCP URL, verbatim)
  login                one dynamic registration, one authorization request (PKCE S256, a `state`), one code
                       exchange, then MCP requests answered 200 with the token
  whoami               `whoami` answered sub `interop-user`, the registered client_id and the granted scopes
                       (`notes:read` only)
  step-up              `add_note` with that token: 403 `insufficient_scope` naming `notes:write`; the client authorized
                       again asking `notes:write` (and kept `notes:read`), got it, and `add_note` succeeded; the next
                       `whoami` shows both scopes (Keel: without a new login)
  no-token-in-output   (keel) no access token, refresh token or code the server issued appears in Keel's output

Bounded: every client run by KEEL_OAUTH_RUN_TIMEOUT (default 40 s), server starts by
KEEL_INTEROP_SERVER_START_TIMEOUT (default 20 s). Loopback only. Exit 0 when every scenario passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from driver import LIVE, RUN_TIMEOUT, START_TIMEOUT, Failed, Keel, Run, Server, Suite, expect, kill, stop_group

HERE = os.path.dirname(os.path.abspath(__file__))
SUBJECT = "interop-user"
READ, WRITE = "notes:read", "notes:write"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A server process: started in its own session, its output in a log file, stopped at the end."""

    def __init__(self, command: list[str], log_path: str, ready: str | None) -> None:
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.line = self._wait_line(ready) if ready is not None else ""

    def _wait_line(self, needle: str) -> str:
        """Reads stdout until a line containing `needle` (copying what it reads to the log)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failed(f"{self.process.args[0]} printed no `{needle}` line within {START_TIMEOUT:.0f}s")
            readable, _, _ = select.select([self.process.stdout], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise Failed(f"{self.process.args} exited before it was ready (exit {self.process.wait()})")
            self.log.write(chunk)
            buffer += chunk
            for line in buffer.decode("utf-8", "replace").splitlines():
                if needle in line:
                    return line

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


def wait_port(port: int, process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise Failed(f"{process.process.args} exited before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failed(f"nothing listened on port {port} within {START_TIMEOUT:.0f}s")


class AuthServer(Server):
    """What driver.Keel needs of a server (the MCP URL, the authorization server's new events), for servers this
    driver starts itself."""

    def __init__(self, as_url: str, mcp_url: str) -> None:
        # Not Server.__init__, which starts the combined server process of driver.py's suites.
        self.as_url, self.mcp_url, self.seen = as_url, mcp_url, 0


REQUEST = re.compile(r"^(GET|POST|DELETE|HEAD|OPTIONS|PUT|PATCH) (\S+) HTTP/1\.[01]$")
STATUS = re.compile(r"^HTTP/1\.[01] (\d{3})")
LINE = re.compile(r"^\+[\d.]+ #(\d+) (C>S|S>C|---) ?(.*)$")


def exchanges(wire_path: str) -> list[dict[str, Any]]:
    """The HTTP exchanges in an httptap log, in the order the responses started: method, path, status and the
    response headers (lowercased names)."""
    pending: dict[str, list[tuple[str, str]]] = {}
    in_headers: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    with open(wire_path, encoding="utf-8", errors="replace") as wire:
        for raw in wire:
            match = LINE.match(raw.rstrip("\n"))
            if not match:
                continue
            conn, tag, text = match.groups()
            text = text.replace("   <-- (no newline)", "")
            if tag == "C>S" and (request := REQUEST.match(text)):
                pending.setdefault(conn, []).append((request.group(1), request.group(2)))
            elif tag == "S>C" and (status := STATUS.match(text)):
                method, path = (pending.get(conn) or [("?", "?")]).pop(0)
                exchange = {"method": method, "path": path, "status": int(status.group(1)), "headers": {}}
                out.append(exchange)
                in_headers[conn] = exchange
            elif tag == "S>C" and conn in in_headers:
                if text == "":
                    del in_headers[conn]
                elif ":" in text:
                    name, value = text.split(":", 1)
                    in_headers[conn]["headers"][name.strip().lower()] = value.strip()
    return out


def check_discovery(wire: list[dict[str, Any]], mcp_url: str, authorize: list[dict[str, Any]]) -> None:
    mcp = [e for e in wire if e["path"] == "/mcp"]
    expect(bool(mcp), "the MCP server saw no request")
    first = mcp[0]
    challenge = first["headers"].get("www-authenticate", "")
    expect(first["status"] == 401, f"the first MCP request was answered {first['status']}, not 401")
    prm_url = mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    expect(
        f'resource_metadata="{prm_url}"' in challenge,
        f"the 401's WWW-Authenticate does not name {prm_url}: {challenge!r}",
    )
    prm = [e for e in wire if e["path"] == "/.well-known/oauth-protected-resource/mcp" and e["method"] == "GET"]
    expect(any(e["status"] == 200 for e in prm), f"the client did not fetch the resource metadata: {prm}")
    expect(bool(authorize), "no authorization request reached the authorization server")
    resource = authorize[0]["query"].get("resource")
    expect(resource == mcp_url, f"the authorization request's resource is {resource!r}, not {mcp_url!r}")


def check_login(registrations: list[dict[str, Any]], authorize: list[dict[str, Any]], codes: list[dict[str, Any]]) -> str:
    """One registration, one S256 authorization with a state, one successful code exchange; the client_id."""
    expect(len(registrations) == 1 and registrations[0]["status"] == 201, f"registrations: {registrations}")
    expect(len(authorize) == 1, f"expected one authorization request, got {len(authorize)}")
    query = authorize[0]["query"]
    expect(query.get("code_challenge_method") == "S256" and bool(query.get("code_challenge")), f"no PKCE S256: {query}")
    expect(bool(query.get("state")), "the authorization request has no state")
    expect(authorize[0]["status"] == 302, f"/authorize answered {authorize[0]['status']}")
    expect(len(codes) == 1 and codes[0]["status"] == 200, f"code exchanges: {[c.get('status') for c in codes]}")
    return registrations[0]["response"]["client_id"]


def check_whoami(who: Any, client_id: str, scopes: list[str]) -> None:
    expect(isinstance(who, dict), f"whoami gave no structured result: {who!r}")
    expect(who.get("sub") == SUBJECT, f"whoami sub is {who.get('sub')!r}, not {SUBJECT!r}")
    expect(who.get("client_id") == client_id, f"whoami client_id is {who.get('client_id')!r}, not {client_id!r}")
    expect(sorted(who.get("scopes") or []) == sorted(scopes), f"whoami scopes are {who.get('scopes')}, not {scopes}")


def check_forbidden(wire: list[dict[str, Any]]) -> None:
    forbidden = [e for e in wire if e["path"] == "/mcp" and e["status"] == 403]
    expect(bool(forbidden), "the MCP server never answered 403 (the step-up's premise)")
    challenge = forbidden[0]["headers"].get("www-authenticate", "")
    expect('error="insufficient_scope"' in challenge, f"the 403 is not insufficient_scope: {challenge!r}")
    scope = re.search(r'scope="([^"]*)"', challenge)
    expect(scope is not None and WRITE in scope.group(1).split(), f"the 403 does not ask for {WRITE}: {challenge!r}")


def check_step_up_authorization(authorize: dict[str, Any], token: dict[str, Any] | None) -> None:
    asked = (authorize["query"].get("scope") or "").split()
    expect(WRITE in asked and READ in asked, f"the re-authorization asked for {asked}, not {READ} + {WRITE}")
    granted = ((token or {}).get("response") or {}).get("scope", "").split()
    expect(WRITE in granted, f"the new token's scope is {granted}")


def where(events: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("path") == path]


def grants(events: list[dict[str, Any]], grant_type: str) -> list[dict[str, Any]]:
    return [e for e in where(events, "/token") if (e.get("form") or {}).get("grant_type") == grant_type]


def keel_result(run: Run) -> dict[str, Any]:
    expect(run.returncode == 0 and not run.timed_out, f"the run failed ({run.describe()})")
    results = [line[len("result ") :] for line in run.stdout.splitlines() if line.startswith("result ")]
    expect(len(results) == 1, f"expected one `result` line, got {len(results)} ({run.describe()})")
    result = json.loads(results[0])
    expect(not result.get("isError"), f"the tool call failed: {results[0][:300]}")
    return result


def run_keel(args: argparse.Namespace, server: AuthServer, wire_path: str, suite: Suite, work: str) -> None:
    keel = Keel(args.keel, os.path.join(work, "tokens"), args.logs, "keel-")
    first = keel.run(server, "whoami", ("whoami",))
    wire_first = exchanges(wire_path)

    suite.scenario("discovery", [], lambda: check_discovery(wire_first, server.mcp_url, first.where("as", "/authorize")))

    client_id: list[str] = []

    def login() -> None:
        expect(first.prompts == 1, f"expected one browser prompt, got {first.prompts} ({first.describe()})")
        client_id.append(check_login(first.where("as", "/register"), first.where("as", "/authorize"), first.grants("authorization_code")))
        keel_result(first)

    suite.scenario("login", [], login)

    def whoami() -> None:
        check_whoami(keel_result(first).get("structuredContent"), client_id[0], [READ])

    suite.scenario("whoami", ["login"], whoami)

    def step_up() -> None:
        seen = len(wire_first)
        run = keel.run(server, "add_note", ("add_note", '{"text":"from keel"}'))
        check_forbidden(exchanges(wire_path)[seen:])
        expect(run.prompts == 1, f"expected one browser prompt for the step-up, got {run.prompts} ({run.describe()})")
        authorize = run.where("as", "/authorize")
        expect(len(authorize) == 1, f"expected one re-authorization, got {len(authorize)}")
        expect(not run.where("as", "/register"), "Keel registered again instead of reusing its registration")
        codes = run.grants("authorization_code")
        check_step_up_authorization(authorize[0], codes[-1] if codes else None)
        result = keel_result(run)
        texts = [b.get("text") for b in result.get("content", []) if b.get("type") == "text"]
        expect("added" in texts, f"add_note answered {texts}")
        after = keel.run(server, "whoami-after", ("whoami",))
        expect(after.prompts == 0 and not after.where("as", "/authorize"), f"a new login after the step-up ({after.describe()})")
        check_whoami(keel_result(after).get("structuredContent"), client_id[0], [READ, WRITE])

    suite.scenario("step-up", ["login"], step_up)

    def no_token_in_output() -> None:
        secrets: set[str] = set()
        for run in keel.runs:
            for event in run.events:
                response = event.get("response")
                if isinstance(response, dict):
                    secrets.update(v for k, v in response.items() if k in ("access_token", "refresh_token") and isinstance(v, str))
                secrets.update(parse_qs(urlsplit(event.get("location", "")).query).get("code", []))
        expect(bool(secrets), "the server issued nothing to look for")
        for run in keel.runs:
            expect(not any(s in run.stdout + run.stderr for s in secrets), f"run {run.label}: a token appears in Keel's output")

    suite.scenario("no-token-in-output", [], no_token_in_output)


def run_python(args: argparse.Namespace, server: AuthServer, wire_path: str, suite: Suite) -> None:
    out_path = os.path.join(args.logs, "python-client.out")
    command = [args.python, os.path.join(HERE, "protected_py_client.py"), "--url", server.mcp_url, "--timeout", str(RUN_TIMEOUT)]
    with open(out_path, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        LIVE.add(process)  # type: ignore[arg-type]
        try:
            code = process.wait(timeout=RUN_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            kill(process)  # type: ignore[arg-type]
            code = process.wait()
        LIVE.discard(process)  # type: ignore[arg-type]
    output = open(out_path, encoding="utf-8", errors="replace").read()
    lines = output.splitlines()
    events = server.new_events()
    wire = exchanges(wire_path)

    def parsed(prefix: str) -> list[Any]:
        return [json.loads(line[len(prefix) + 1 :]) for line in lines if line.startswith(prefix + " ")]

    failure = next((line for line in lines if line.startswith("python_client: FAILED")), None)
    describe = f"exit {code}" + (f"; {failure[:600]}" if failure else "")
    authorize = where(events, "/authorize")
    suite.scenario("discovery", [], lambda: check_discovery(wire, server.mcp_url, authorize))

    client_id: list[str] = []

    def login() -> None:
        expect(bool(parsed("whoami")), f"no whoami result ({describe})")
        codes = grants(events, "authorization_code")
        client_id.append(check_login(where(events, "/register"), authorize[:1], codes[:1]))

    suite.scenario("login", [], login)

    def whoami() -> None:
        result = parsed("whoami")[0]
        expect(not result["isError"], f"whoami failed: {result}")
        check_whoami(result["structured"], client_id[0], [READ])

    suite.scenario("whoami", ["login"], whoami)

    def step_up() -> None:
        check_forbidden(wire)
        expect(len(authorize) == 2, f"expected two authorization requests (login, step-up), got {len(authorize)} ({describe})")
        codes = grants(events, "authorization_code")
        check_step_up_authorization(authorize[1], codes[1] if len(codes) > 1 else None)
        added = parsed("add_note")
        expect(bool(added) and not added[0]["isError"] and "added" in added[0]["text"], f"add_note: {added} ({describe})")
        whos = parsed("whoami")
        expect(len(whos) == 2, f"no whoami after the step-up ({describe})")
        check_whoami(whos[1]["structured"], client_id[0], [READ, WRITE])
        expect(code == 0 and output.rstrip().endswith("python_client: done"), describe)

    suite.scenario("step-up", ["login"], step_up)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=["keel", "python"], required=True)
    parser.add_argument("--keel", help="the oauth_client example executable (--client keel)")
    parser.add_argument("--protected", required=True, help="the protected_server example executable")
    parser.add_argument("--python", required=True, help="the interop venv's python (PyJWT, cryptography, mcp)")
    parser.add_argument("--logs", required=True)
    args = parser.parse_args()
    if args.client == "keel" and not args.keel:
        parser.error("--client keel needs --keel")
    os.makedirs(args.logs, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    suite = Suite(args)
    processes: list[Process] = []
    work = tempfile.mkdtemp(prefix="keel-protected-interop-")
    try:
        try:
            auth = Process([args.python, os.path.join(HERE, "jwt_auth_server.py"), "--first-grant", READ],
                           os.path.join(args.logs, "auth-server.log"), "ready ")
            processes.append(auth)
            as_url = auth.line.split()[1]
            port, tap_port = free_port(), free_port()
            mcp_url = f"http://127.0.0.1:{tap_port}/mcp"
            processes.append(Process(
                [args.protected, "--port", str(port), "--issuer", as_url, "--jwks-url", as_url + "/jwks", "--resource", mcp_url],
                os.path.join(args.logs, "protected-server.log"), "listening"))
            wire_path = os.path.join(args.logs, "wire")
            tap = Process([args.python, os.path.join(HERE, "..", "httptap.py"), wire_path, str(tap_port), str(port)],
                          os.path.join(args.logs, "tap.log"), None)
            processes.append(tap)
            wait_port(tap_port, tap)
        except Failed as failure:
            print(f"scenario discovery FAILED: {failure}", flush=True)
            return 1
        server = AuthServer(as_url, mcp_url)
        if args.client == "keel":
            run_keel(args, server, wire_path, suite, work)
        else:
            run_python(args, server, wire_path, suite)
    finally:
        for process in list(LIVE):
            kill(process)
        for process in processes:
            process.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(why is None for _, why in suite.results) else 1


if __name__ == "__main__":
    sys.exit(main())
