#!/usr/bin/env python3
"""The official Python SDK's OAuth client (`mcp`, pinned in interop/requirements.txt: `OAuthClientProvider`) logging
into Keel's `protected_server` example, for interop/oauth/protected_driver.py.

    protected_py_client.py --url MCP_URL

One session over streamable HTTP with the provider as the httpx auth: `initialize`, then `whoami`, then `add_note`
(which needs `notes:write`, so a first token limited to `notes:read` is answered 403 `insufficient_scope` and the
SDK must authorize again), then `whoami` again. The browser is played in-process: the redirect handler GETs the
authorization URL without following redirects and hands the `code`, `state` and `iss` of the `Location` to the
callback handler (the authorization server approves at once). Tokens are kept in memory.

Prints, one per line (the driver parses them):

    authorize {"scope": ..., "resource": ...}   each authorization request the SDK sent the browser to
    whoami {...}                                the structured result of each `whoami`
    add_note {...}                              the `add_note` result (isError and text)
    python_client: done

and `python_client: FAILED: why` (exit 1) when a call raises. Loopback only; every call is bounded (--timeout).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.types import Implementation


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Visits the authorization URL (no redirects followed) and keeps what the server sent back."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1":
            raise RuntimeError(f"refusing to browse {url}: loopback only")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        print("authorize " + json.dumps({"scope": query.get("scope"), "resource": query.get("resource")}), flush=True)
        async with httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
            response = await http.get(url)
        location = response.headers.get("location")
        if response.status_code != 302 or not location:
            raise RuntimeError(f"authorization endpoint answered {response.status_code}: {response.text[:300]}")
        back = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if "code" not in back:
            raise RuntimeError(f"authorization endpoint redirected without a code: {back}")
        self.result = AuthorizationCodeResult(code=back["code"], state=back.get("state"), iss=back.get("iss"))

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("callback before the authorization URL was visited")
        result, self.result = self.result, None
        return result


def structured(result: Any) -> dict[str, Any]:
    texts = [c.text for c in result.content if getattr(c, "text", None) is not None]
    return {"isError": bool(result.is_error), "structured": result.structured_content, "text": texts}


async def run(url: str, timeout: float) -> None:
    browser = Browser(timeout)
    provider = OAuthClientProvider(
        server_url=url,
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
        async with httpx2.AsyncClient(auth=provider, timeout=timeout) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write, client_info=Implementation(name="keel-interop-py", version="1")) as session:
                    await session.initialize()
                    who = await session.call_tool("whoami", {})
                    print("whoami " + json.dumps(structured(who)), flush=True)
                    added = await session.call_tool("add_note", {"text": "from the Python SDK"})
                    print("add_note " + json.dumps(structured(added)), flush=True)
                    who = await session.call_tool("whoami", {})
                    print("whoami " + json.dumps(structured(who)), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    try:
        anyio.run(run, args.url, args.timeout)
    except BaseException as error:  # noqa: BLE001 - report any failure (exception groups included) on one line
        print(f"python_client: FAILED: {type(error).__name__}: {error!r}"[:2000], flush=True)
        return 1
    print("python_client: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
