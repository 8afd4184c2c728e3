#!/usr/bin/env python3
"""The Python SDK's OAuth client (PyPI `mcp`, pinned in interop/requirements.txt: `OAuthClientProvider`) against
Keel's embedded authorization server: starts the `authorization_server` example (authorization server and protected
MCP server in one process), then one session over streamable HTTP with the provider as the httpx auth:
`initialize`, `whoami`, `add_note` (which needs `notes:write` while the MCP endpoint's 401 asks for `notes:read`
only, so the SDK gets 403 `insufficient_scope` and must authorize again), `whoami`.

    py_client_keel_as.py --server EXE --logs DIR     # EXE: the built authorization_server example

The browser is played in-process: the redirect handler GETs the authorization URL without following redirects and
hands the `code`, `state` and `iss` of the `Location` to the callback handler (`--auto-approve`). An httpx response
hook records every status the MCP endpoint answered. Scenarios (each prints `scenario NAME ok` or
`scenario NAME FAILED: why`):

  login     one authorization request (PKCE S256, a `state`, `resource` = the MCP URL) answered with a code and
            `iss` = the issuer (RFC 9207), then `whoami` answered
  whoami    `whoami` says sub `demo-user`, the dynamically registered client, scopes `notes:read` (not `notes:write`)
  step-up   `add_note` was answered 403 `insufficient_scope` naming `notes:write`; the SDK authorized again asking
            for `notes:write`, `add_note` then succeeded, and the next `whoami` shows `notes:write`

Loopback only; bounded by --timeout (default 60 s) in all. The example's output goes to DIR/server.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from mcp.types import Implementation

from protected_py_client import MemoryStorage, structured  # the sibling script's token store and result digest

READ, WRITE = "notes:read", "notes:write"
SUBJECT = "demo-user"


class Browser:
    """Visits each authorization URL (no redirects followed) and keeps what the server sent back."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.result: AuthorizationCodeResult | None = None
        self.visits: list[dict[str, Any]] = []

    async def redirect(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1":
            raise RuntimeError(f"refusing to browse {url}: loopback only")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        async with httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
            response = await http.get(url)
        location = response.headers.get("location") or ""
        back = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        self.visits.append({"query": query, "status": response.status_code, "back": back})
        if response.status_code != 302 or "code" not in back:
            raise RuntimeError(f"authorization endpoint answered {response.status_code}, back {back}: {response.text[:300]}")
        self.result = AuthorizationCodeResult(code=back["code"], state=back.get("state"), iss=back.get("iss"))

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("callback before the authorization URL was visited")
        result, self.result = self.result, None
        return result


class Session:
    """What one SDK session saw."""

    def __init__(self) -> None:
        self.mcp_statuses: list[tuple[int, str]] = []  # (status, WWW-Authenticate) of every /mcp answer
        self.results: list[tuple[str, dict[str, Any]]] = []
        self.error: str | None = None


async def run_session(mcp_url: str, browser: Browser, seen: Session, timeout: float) -> None:
    async def record(response: Any) -> None:
        if urlsplit(str(response.request.url)).path == "/mcp":
            seen.mcp_statuses.append((response.status_code, response.headers.get("www-authenticate", "")))

    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="Keel interop (Python SDK)",
            redirect_uris=["http://127.0.0.1:9/callback"],  # never reached: the browser stops at the Location
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    with anyio.fail_after(timeout):
        async with httpx2.AsyncClient(auth=provider, timeout=timeout, event_hooks={"response": [record]}) as http:
            async with streamable_http_client(mcp_url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                info = Implementation(name="keel-interop-py", version="1")
                async with ClientSession(read, write, client_info=info) as session:
                    await session.initialize()
                    seen.results.append(("whoami", structured(await session.call_tool("whoami", {}))))
                    added = await session.call_tool("add_note", {"text": "from the Python SDK"})
                    seen.results.append(("add_note", structured(added)))
                    seen.results.append(("whoami", structured(await session.call_tool("whoami", {}))))


class Failed(Exception):
    pass


def expect(condition: bool, why: str) -> None:
    if not condition:
        raise Failed(why)


def scenario(name: str, check: Any) -> bool:
    try:
        check()
    except Failed as failure:
        print(f"scenario {name} FAILED: {failure}"[:2000], flush=True)
        return False
    print(f"scenario {name} ok", flush=True)
    return True


def start_server(exe: str, log_path: str) -> tuple[subprocess.Popen[str], str]:
    log = open(log_path, "w", encoding="utf-8")
    server = subprocess.Popen([exe, "--port", "0", "--auto-approve"], stdout=subprocess.PIPE, stderr=log, text=True)
    # The example prints its `listening` line first; one that dies closes stdout, which ends this read (and the
    # suite's timeout bounds one that hangs).
    line = server.stdout.readline() if server.stdout else ""
    log.write(line)
    log.flush()
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if not found:
        server.kill()
        server.wait()
        raise RuntimeError(f"the example printed no listening line: {line!r}")
    return server, found.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="the authorization_server example executable")
    parser.add_argument("--logs", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    os.makedirs(args.logs, exist_ok=True)
    server, issuer = start_server(args.server, os.path.join(args.logs, "server.log"))
    mcp_url = f"{issuer}/mcp"
    browser, seen = Browser(args.timeout), Session()
    try:
        try:
            anyio.run(run_session, mcp_url, browser, seen, args.timeout)
        except BaseException as error:  # noqa: BLE001 - any failure (exception groups included) is reported below
            seen.error = f"{type(error).__name__}: {error!r}"[:600]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    describe = f"; the session failed: {seen.error}" if seen.error else ""
    print("visits " + json.dumps(browser.visits), flush=True)
    print("mcp " + json.dumps(seen.mcp_statuses), flush=True)
    print("results " + json.dumps(seen.results), flush=True)
    results = lambda name: [r for n, r in seen.results if n == name]  # noqa: E731

    def login() -> None:
        expect(len(browser.visits) >= 1, f"no authorization request{describe}")
        first = browser.visits[0]
        query, back = first["query"], first["back"]
        expect(query.get("code_challenge_method") == "S256" and bool(query.get("code_challenge")), f"no PKCE S256: {query}")
        expect(bool(query.get("state")) and back.get("state") == query.get("state"), f"state not echoed: {query} -> {back}")
        expect(query.get("resource") == mcp_url, f"resource {query.get('resource')!r}, not {mcp_url!r}")
        expect(back.get("iss") == issuer, f"iss {back.get('iss')!r}, not {issuer!r} (RFC 9207)")
        expect(bool(results("whoami")), f"no whoami answer{describe}")

    def whoami() -> None:
        expect(bool(results("whoami")), f"no whoami answer{describe}")
        who = results("whoami")[0]
        expect(not who["isError"], f"whoami failed: {who}")
        s = who["structured"] or {}
        expect(s.get("sub") == SUBJECT, f"sub {s.get('sub')!r}, not {SUBJECT!r}")
        expect(bool(s.get("client_id")), f"no client_id: {s}")
        expect(READ in s.get("scopes", []) and WRITE not in s.get("scopes", []), f"first scopes {s.get('scopes')}")

    def step_up() -> None:
        forbidden = [h for status, h in seen.mcp_statuses if status == 403]
        expect(bool(forbidden), f"the MCP endpoint never answered 403 (answers: {[s for s, _ in seen.mcp_statuses]}){describe}")
        expect('error="insufficient_scope"' in forbidden[0], f"the 403 is not insufficient_scope: {forbidden[0]!r}")
        scope = re.search(r'scope="([^"]*)"', forbidden[0])
        expect(scope is not None and WRITE in scope.group(1).split(), f"the 403 does not name {WRITE}: {forbidden[0]!r}")
        expect(len(browser.visits) == 2, f"expected two authorization requests (login, step-up), got {len(browser.visits)}{describe}")
        asked = (browser.visits[1]["query"].get("scope") or "").split()
        expect(WRITE in asked, f"the step-up asked for {asked}")
        added = results("add_note")
        expect(bool(added) and not added[0]["isError"] and "added" in added[0]["text"], f"add_note: {added}{describe}")
        whos = results("whoami")
        expect(len(whos) == 2, f"no whoami after the step-up{describe}")
        expect(WRITE in (whos[1]["structured"] or {}).get("scopes", []), f"scopes after the step-up: {whos[1]}")
        expect(seen.error is None, describe)

    outcomes = [scenario("login", login), scenario("whoami", whoami), scenario("step-up", step_up)]
    return 0 if all(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
