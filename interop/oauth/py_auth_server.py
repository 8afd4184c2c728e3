#!/usr/bin/env python3
"""An OAuth authorization server and the MCP server it protects, both from the official Python SDK (`mcp`, pinned
in interop/requirements.txt), for interop/oauth/driver.py to log Keel's OAuth client into.

    py_auth_server.py [--no-offline-access] [--access-ttl SECONDS]

Binds two ephemeral ports on 127.0.0.1 and prints one line when both listen:

    ready AS_URL MCP_URL

* The authorization server is the SDK's own `create_auth_routes` (metadata, /authorize, /token, dynamic client
  registration at /register, revocation at /revoke) over `AutoApproveProvider`, an in-memory implementation of the
  SDK's `OAuthAuthorizationServerProvider` that approves every authorization request at once (it redirects straight
  back to the client, as a user clicking "allow" would). Access tokens are short-lived (--access-ttl, default 60 s),
  refresh tokens rotate on use, and revoking either token of a grant revokes both. `scopes_supported` lists
  `mcp:tools` and `offline_access` (only `mcp:tools` with --no-offline-access); when `offline_access` is advertised,
  a refresh token is issued only to an authorization that asked for it, as OpenID-style servers do.
* The MCP server is the SDK's `MCPServer` over streamable HTTP at MCP_URL (/mcp), with one tool, `add` {a, b}, and
  the SDK's bearer-token middleware: a `TokenVerifier` that asks the provider, `mcp:tools` required, tokens bound to
  MCP_URL (RFC 8707), protected resource metadata naming AS_URL.

For the test driver only (plain JSON, no authentication; never do this in a real server), the authorization server
also answers:

    GET  /_test/events   every HTTP exchange both servers saw: request (query, form, credentials) and, for the
                         authorization server, the response (status, Location, JSON body)
    POST /_test/expire   {"advertise_ttl": N}: every access token issued so far stops working now; tokens issued
                         from now on say expires_in=N (and live that long)
    POST /_test/revoke   revokes every grant through the provider's revoke_token (as /revoke would)

Logs go to stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

REQUIRED_SCOPE = "mcp:tools"
OFFLINE_ACCESS = "offline_access"
CODE_TTL = 300
REFRESH_TTL = 3600


@dataclass
class Grant:
    """One authorization: its current access token and refresh token (rotated together)."""

    client_id: str
    scopes: list[str]
    resource: str | None
    access: AccessToken | None = None
    refresh: RefreshToken | None = None


@dataclass
class AutoApproveProvider:
    """An in-memory authorization server that approves every request (a test stand-in for a consent page)."""

    advertise_offline_access: bool
    access_ttl: int
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        assert client.client_id is not None
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + CODE_TTL,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="interop-user",
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        if self.codes.pop(authorization_code.code, None) is None:
            raise TokenError("invalid_grant", "authorization code already used")
        grant = Grant(authorization_code.client_id, authorization_code.scopes, authorization_code.resource)
        self.grants.append(grant)
        return self._issue(client, grant)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        for grant in self.grants:
            if grant.refresh is not None and grant.refresh.token == refresh_token:
                return grant.refresh if grant.client_id == client.client_id else None
        return None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        grant = self._grant_of(refresh_token.token)
        if grant is None:
            raise TokenError("invalid_grant", "refresh token revoked")
        if scopes:
            grant.scopes = scopes
        return self._issue(client, grant)

    async def load_access_token(self, token: str) -> AccessToken | None:
        grant = self._grant_of(token)
        if grant is None or grant.access is None or grant.access.token != token:
            return None
        if grant.access.expires_at is not None and grant.access.expires_at <= time.time():
            return None
        return grant.access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        grant = self._grant_of(token.token)
        if grant is not None:
            self.grants.remove(grant)

    def _grant_of(self, token: str) -> Grant | None:
        for grant in self.grants:
            if (grant.access is not None and grant.access.token == token) or (
                grant.refresh is not None and grant.refresh.token == token
            ):
                return grant
        return None

    def _issue(self, client: OAuthClientInformationFull, grant: Grant) -> OAuthToken:
        """New access token (and a rotated refresh token when this grant may have one) for `grant`."""
        now = int(time.time())
        grant.access = AccessToken(
            token=secrets.token_urlsafe(32),
            client_id=grant.client_id,
            scopes=grant.scopes,
            expires_at=now + self.access_ttl,
            resource=grant.resource,
            subject="interop-user",
        )
        wants_refresh = "refresh_token" in (client.grant_types or []) and (
            not self.advertise_offline_access or OFFLINE_ACCESS in grant.scopes
        )
        grant.refresh = (
            RefreshToken(
                token=secrets.token_urlsafe(32),
                client_id=grant.client_id,
                scopes=grant.scopes,
                expires_at=now + REFRESH_TTL,
                resource=grant.resource,
                subject="interop-user",
            )
            if wants_refresh
            else None
        )
        return OAuthToken(
            access_token=grant.access.token,
            expires_in=self.access_ttl,
            scope=" ".join(grant.scopes),
            refresh_token=grant.refresh.token if grant.refresh else None,
        )


class ProviderVerifier:
    """The MCP server's `TokenVerifier`: asks the provider (the servers share a process, as in the SDK's examples)."""

    def __init__(self, provider: AutoApproveProvider) -> None:
        self.provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self.provider.load_access_token(token)


class Recorder:
    """ASGI middleware keeping one event per HTTP exchange, for /_test/events."""

    def __init__(self, app: ASGIApp, side: str, events: list[dict[str, Any]]) -> None:
        self.app, self.side, self.events = app, side, events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_test/"):
            await self.app(scope, receive, send)
            return
        # Read the request body, then hand the same messages to the app.
        body, buffered = b"", []
        while True:
            message = await receive()
            buffered.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        event: dict[str, Any] = {
            "side": self.side,
            "time": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "query": {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()},
        }
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            event["form"] = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        elif body and self.side == "as":
            try:
                event["json_body"] = json.loads(body)
            except ValueError:
                pass
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            event["bearer"] = credentials
        elif scheme.lower() == "basic":
            try:
                event["basic_client_id"] = base64.b64decode(credentials).decode().partition(":")[0]
            except ValueError:
                event["basic_client_id"] = "(undecodable)"
        self.events.append(event)
        response = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                event["status"] = message["status"]
                for k, v in message.get("headers", []):
                    if k.decode("latin-1").lower() == "location":
                        event["location"] = v.decode("latin-1")
            elif message["type"] == "http.response.body" and self.side == "as" and len(response) < 1 << 16:
                response.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    try:
                        event["response"] = json.loads(response)
                    except ValueError:
                        event["response_text"] = response.decode("utf-8", "replace")[:2000]
            await send(message)

        await self.app(scope, replay, capture)


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-offline-access", action="store_true", help="do not list offline_access")
    parser.add_argument("--access-ttl", type=int, default=60, help="access token lifetime in seconds")
    args = parser.parse_args()

    as_sock, mcp_sock = listening_socket(), listening_socket()
    as_url = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    mcp_url = f"http://127.0.0.1:{mcp_sock.getsockname()[1]}/mcp"
    scopes = [REQUIRED_SCOPE] if args.no_offline_access else [REQUIRED_SCOPE, OFFLINE_ACCESS]
    provider = AutoApproveProvider(advertise_offline_access=not args.no_offline_access, access_ttl=args.access_ttl)
    events: list[dict[str, Any]] = []

    settings = AuthSettings(
        issuer_url=as_url,  # type: ignore[arg-type]  # pydantic parses it (and keeps it without a trailing slash)
        resource_server_url=mcp_url,  # type: ignore[arg-type]
        required_scopes=[REQUIRED_SCOPE],
        validate_token_resource=True,
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=scopes, default_scopes=scopes
        ),
        revocation_options=RevocationOptions(enabled=True),
    )

    async def test_events(_: Request) -> JSONResponse:
        return JSONResponse(events)

    async def test_expire(request: Request) -> JSONResponse:
        body = await request.json()
        now = int(time.time())
        for grant in provider.grants:
            if grant.access is not None:
                grant.access.expires_at = now - 1
        provider.access_ttl = int(body["advertise_ttl"])
        return JSONResponse({"expired": len(provider.grants)})

    async def test_revoke(_: Request) -> JSONResponse:
        revoked = 0
        for grant in list(provider.grants):
            token = grant.refresh or grant.access
            if token is not None:
                await provider.revoke_token(token)
                revoked += 1
        return JSONResponse({"revoked": revoked})

    auth_routes = create_auth_routes(
        provider=provider,
        issuer_url=settings.issuer_url,
        client_registration_options=settings.client_registration_options,
        revocation_options=settings.revocation_options,
    )
    control_routes = [
        Route("/_test/events", test_events, methods=["GET"]),
        Route("/_test/expire", test_expire, methods=["POST"]),
        Route("/_test/revoke", test_revoke, methods=["POST"]),
    ]
    as_app = Recorder(Starlette(routes=auth_routes + control_routes), "as", events)

    mcp = MCPServer("keel-oauth-interop-python", token_verifier=ProviderVerifier(provider), auth=settings)

    @mcp.tool(description="Adds two numbers")
    def add(a: float, b: float) -> dict[str, float]:
        return {"sum": a + b}

    mcp_app = Recorder(mcp.streamable_http_app(host="127.0.0.1"), "rs", events)

    async def serve() -> None:
        servers = [
            (uvicorn.Server(uvicorn.Config(as_app, log_level="warning", lifespan="off")), as_sock),
            (uvicorn.Server(uvicorn.Config(mcp_app, log_level="warning")), mcp_sock),
        ]
        async with anyio.create_task_group() as group:
            for server, sock in servers:
                group.start_soon(lambda s=server, k=sock: s.serve(sockets=[k]))
            print(f"ready {as_url} {mcp_url}", flush=True)

    anyio.run(serve)


if __name__ == "__main__":
    sys.exit(main())
