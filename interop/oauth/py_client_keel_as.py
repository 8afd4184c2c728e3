#!/usr/bin/env python3
"""The Python SDK's OAuth client (PyPI `mcp`, pinned in interop/requirements.txt) against Keel's embedded
authorization server: starts the `authorization_server` example, logs in (dynamic registration, PKCE, the
browser played headless: GET the authorize URL without following redirects, hand the `Location`'s code, state
and iss to the SDK), calls `whoami`, and checks who the token says the caller is.

    py_client_keel_as.py EXE      # EXE: the built authorization_server example

Prints `python-client-keel-as ok` and exits 0 on success. Bounded: 60 s in all.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import sys
import urllib.parse

import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens = None
        self.info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.info

    async def set_client_info(self, info) -> None:
        self.info = info


async def login_and_whoami(mcp_url: str) -> dict:
    landed: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("GET", f"{parts.path}?{parts.query}")
            response = conn.getresponse()
            response.read()
            if response.status != 302:
                raise RuntimeError(f"the authorization endpoint answered {response.status}")
            landed["location"] = response.getheader("Location") or ""
        finally:
            conn.close()

    async def callback_handler() -> AuthorizationCodeResult:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(landed["location"]).query)
        if "error" in query:
            raise RuntimeError(f"authorization refused: {query}")
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0])

    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="python-sdk-interop",
            redirect_uris=["http://127.0.0.1:3999/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=20) as client:
        async with streamable_http_client(mcp_url, http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whoami", {})
                if result.is_error:
                    raise RuntimeError(f"whoami failed: {result}")
                return result.structured_content or json.loads(result.content[0].text)


def main() -> int:
    exe = sys.argv[1]
    server = subprocess.Popen([exe, "--port", "0", "--auto-approve"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not found:
            print(f"python-client-keel-as FAILED: no listening line: {line!r}")
            return 1
        who = asyncio.run(asyncio.wait_for(login_and_whoami(f"{found.group(1)}/mcp"), 60))
        if who.get("sub") != "demo-user" or "notes:read" not in who.get("scopes", []):
            print(f"python-client-keel-as FAILED: whoami said {who}")
            return 1
        print(f"python-client-keel-as ok: whoami {json.dumps(who)}")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
