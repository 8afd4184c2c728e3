#!/usr/bin/env python3
"""A small OAuth 2.1 authorization server that issues JWT access tokens, for interop/oauth/protected_driver.py to
log clients into Keel's `protected_server` example (a resource server that verifies JWTs against a JWKS).

    jwt_auth_server.py [--alg ES256|RS256] [--first-grant SCOPES] [--access-ttl SECONDS]

Binds an ephemeral port on 127.0.0.1 and prints one line when it listens:

    ready AS_URL

It serves, on AS_URL (the issuer, no trailing slash):

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (S256 only, public clients, RFC 9207 `iss`)
    POST /register                                 RFC 7591 dynamic client registration (public clients)
    GET  /authorize                                approves at once (a user clicking "allow"): code + PKCE S256,
                                                   `state` and `iss` sent back, `resource` recorded with the code
    POST /token                                    authorization_code (PKCE checked, redirect_uri and resource must
                                                   match the code's) and refresh_token (rotating)
    GET  /jwks                                     the public signing key

Access tokens are JWTs (`typ: at+jwt`, RFC 9068) signed with a key made at start (ES256 by default, or RS256):
`iss` = AS_URL, `sub` = `interop-user`, `aud` = the `resource` of the authorization, `client_id`, `scope` = the
scopes asked for intersected with `notes:read notes:write`, `iat`, `nbf`, `exp` (--access-ttl, default 300 s), `jti`.
With --first-grant SCOPES the first authorization of each client is granted at most SCOPES (a user who consented to
less than was asked: the token response's `scope` says so); later ones get what they ask for, which is how a client's
step-up after a 403 `insufficient_scope` is tested.

For the test driver only (plain JSON, no authentication; never in a real server):

    GET /_test/events   every exchange: method, path, query / form, status, Location, JSON response, time

Logs go to stderr. Needs PyJWT and cryptography (pinned in interop/requirements.txt).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SUPPORTED_SCOPES = ["notes:read", "notes:write"]
SUBJECT = "interop-user"
CODE_TTL = 300
MAX_BODY = 64 * 1024


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class State:
    """Everything the server remembers, behind one lock (the HTTP server is threaded)."""

    def __init__(self, alg: str, first_grant: list[str] | None, access_ttl: int) -> None:
        self.lock = threading.Lock()
        self.alg = alg
        self.kid = uuid.uuid4().hex[:16]
        self.key: Any = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else rsa.generate_private_key(65537, 2048)
        self.first_grant = first_grant
        self.access_ttl = access_ttl
        self.issuer = ""
        self.clients: dict[str, dict[str, Any]] = {}
        self.grants_per_client: dict[str, int] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return {"keys": [public]}

    def access_token(self, client_id: str, scopes: list[str], resource: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": SUBJECT,
            "aud": resource,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + self.access_ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"kid": self.kid, "typ": "at+jwt"})

    def tokens(self, client_id: str, scopes: list[str], resource: str) -> dict[str, Any]:
        refresh = secrets.token_urlsafe(32)
        self.refresh[refresh] = {"client_id": client_id, "scopes": scopes, "resource": resource}
        return {
            "access_token": self.access_token(client_id, scopes, resource),
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "scope": " ".join(scopes),
            "refresh_token": refresh,
        }


class Handler(BaseHTTPRequestHandler):
    server_version = "keel-interop-jwt-as"
    state: State  # set on the class before serving

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("jwt_auth_server: " + (format % args) + "\n")

    # ------------------------------------------------------------------ plumbing
    def reply(self, status: int, body: Any = None, location: str | None = None, event: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if event is not None:
            event.update(status=status)
            if location:
                event["location"] = location
            if body is not None and not self.path.startswith("/_test/"):
                event["response"] = body
            with self.state.lock:
                self.state.events.append(event)

    def event(self, **extra: Any) -> dict[str, Any]:
        parts = urlsplit(self.path)
        return {"side": "as", "method": self.command, "path": parts.path, "time": time.time(), **extra}

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length)

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        s = self.state
        if parts.path == "/.well-known/oauth-authorization-server":
            self.reply(200, self.metadata(), event=self.event())
        elif parts.path == "/jwks":
            self.reply(200, s.jwks(), event=self.event())
        elif parts.path == "/authorize":
            self.authorize(query, self.event(query=query))
        elif parts.path == "/_test/events":
            with s.lock:
                events = list(s.events)
            self.reply(200, events)
        else:
            self.reply(404, {"error": "not_found"}, event=self.event())

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            raw = self.body()
        except ValueError:
            self.reply(413, {"error": "invalid_request"}, event=self.event())
            return
        if path == "/register":
            try:
                metadata = json.loads(raw or b"{}")
            except ValueError:
                metadata = None
            self.register(metadata, self.event(json=metadata))
        elif path == "/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            self.token(form, self.event(form=form))
        else:
            self.reply(404, {"error": "not_found"}, event=self.event())

    def metadata(self) -> dict[str, Any]:
        issuer = self.state.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": issuer + "/authorize",
            "token_endpoint": issuer + "/token",
            "registration_endpoint": issuer + "/register",
            "jwks_uri": issuer + "/jwks",
            "scopes_supported": SUPPORTED_SCOPES,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_response_iss_parameter_supported": True,
        }

    def register(self, metadata: Any, event: dict[str, Any]) -> None:
        uris = metadata.get("redirect_uris") if isinstance(metadata, dict) else None
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            self.reply(400, {"error": "invalid_redirect_uri", "error_description": "redirect_uris required"}, event=event)
            return
        client_id = "client-" + secrets.token_hex(8)
        client = {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        for key in ("client_name", "application_type", "scope"):
            if isinstance(metadata.get(key), str):
                client[key] = metadata[key]
        with self.state.lock:
            self.state.clients[client_id] = client
        self.reply(201, client, event=event)

    def authorize(self, q: dict[str, str], event: dict[str, Any]) -> None:
        s = self.state
        with s.lock:
            client = s.clients.get(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        if client is None or redirect_uri not in client["redirect_uris"]:
            # Never redirect to a URI that was not registered (RFC 6749 §4.1.2.1).
            self.reply(400, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"}, event=event)
            return

        def back(**params: str) -> None:
            sep = "&" if urlsplit(redirect_uri).query else "?"
            params = {**params, "iss": s.issuer}
            if "state" in q:
                params["state"] = q["state"]
            self.reply(302, location=redirect_uri + sep + urlencode(params), event=event)

        if q.get("response_type") != "code":
            back(error="unsupported_response_type")
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            back(error="invalid_request", error_description="PKCE S256 required")
        elif not q.get("resource"):
            back(error="invalid_target", error_description="resource required")
        else:
            asked = (q.get("scope") or "").split()
            scopes = [x for x in SUPPORTED_SCOPES if x in asked]
            with s.lock:
                earlier = s.grants_per_client.get(client["client_id"], 0)
                s.grants_per_client[client["client_id"]] = earlier + 1
                if s.first_grant is not None and earlier == 0:
                    scopes = [x for x in scopes if x in s.first_grant]
                code = secrets.token_urlsafe(24)
                s.codes[code] = {
                    "client_id": client["client_id"],
                    "redirect_uri": redirect_uri,
                    "challenge": q["code_challenge"],
                    "scopes": scopes,
                    "resource": q["resource"],
                    "expires": time.time() + CODE_TTL,
                }
            event["granted_scope"] = " ".join(scopes)
            back(code=code)

    def token(self, form: dict[str, str], event: dict[str, Any]) -> None:
        s = self.state
        grant = form.get("grant_type")
        client_id = form.get("client_id", "")
        with s.lock:
            known = client_id in s.clients
            if grant == "authorization_code":
                code = s.codes.pop(form.get("code", ""), None)  # one use only
            elif grant == "refresh_token":
                code = s.refresh.pop(form.get("refresh_token", ""), None)  # rotates
            else:
                code = None
        if not known:
            self.reply(401, {"error": "invalid_client"}, event=event)
            return
        if grant not in ("authorization_code", "refresh_token"):
            self.reply(400, {"error": "unsupported_grant_type"}, event=event)
            return
        if code is None or code["client_id"] != client_id:
            self.reply(400, {"error": "invalid_grant"}, event=event)
            return
        if "resource" in form and form["resource"] != code["resource"]:
            self.reply(400, {"error": "invalid_target", "error_description": "resource differs from the grant's"}, event=event)
            return
        scopes = code["scopes"]
        if grant == "authorization_code":
            verifier = form.get("code_verifier", "")
            challenge = b64url(hashlib.sha256(verifier.encode()).digest())
            if time.time() > code["expires"] or not hmac.compare_digest(challenge, code["challenge"]):
                self.reply(400, {"error": "invalid_grant", "error_description": "PKCE or expiry"}, event=event)
                return
            if form.get("redirect_uri") != code["redirect_uri"]:
                self.reply(400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}, event=event)
                return
        elif form.get("scope"):
            narrower = form["scope"].split()
            if any(x not in scopes for x in narrower):
                self.reply(400, {"error": "invalid_scope"}, event=event)
                return
            scopes = [x for x in scopes if x in narrower]
        with s.lock:
            tokens = s.tokens(client_id, scopes, code["resource"])
        self.reply(200, tokens, event=event)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alg", choices=["ES256", "RS256"], default="ES256")
    parser.add_argument("--first-grant", help="space-separated scopes a client's first authorization is limited to")
    parser.add_argument("--access-ttl", type=int, default=300)
    args = parser.parse_args()
    Handler.state = State(args.alg, args.first_grant.split() if args.first_grant is not None else None, args.access_ttl)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    Handler.state.issuer = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(f"ready {Handler.state.issuer}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
