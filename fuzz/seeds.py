#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into <out>/<target>/ (called by fuzz/run).

Seeds come from the official MCP example messages (`<schema-dir>/2026-07-28/examples/`), read in place and never
copied into the repository, shaped into each target's input format; the formats that have no official examples
(WWW-Authenticate, OAuth documents, requestState) get a few hand-written seeds here. Files are named by content
hash, so running this again adds nothing new. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

EXAMPLES_REVISION = "2026-07-28"
# Params examples become request frames of these methods (both eras' method names are the same).
PARAMS_METHODS = {
    "CallToolRequestParams": "tools/call",
    "CompleteRequestParams": "completion/complete",
    "CreateMessageRequestParams": "sampling/createMessage",
    "ElicitRequestFormParams": "elicitation/create",
    "ElicitRequestURLParams": "elicitation/create",
    "GetPromptRequestParams": "prompts/get",
    "PaginatedRequestParams": "tools/list",
    "CancelledNotificationParams": "notifications/cancelled",
    "ProgressNotificationParams": "notifications/progress",
    "LoggingMessageNotificationParams": "notifications/message",
    "ResourceUpdatedNotificationParams": "notifications/resources/updated",
}
LEGACY_INITIALIZE = {
    "jsonrpc": "2.0", "id": 0, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {"roots": {"listChanged": True}},
               "clientInfo": {"name": "fuzz", "version": "1.0"}},
}


def examples(schema_dir: Path) -> list[tuple[str, object]]:
    root = schema_dir / EXAMPLES_REVISION / "examples"
    if not root.is_dir():
        print(f"fuzz/seeds.py: WARNING: no MCP examples at {root} (set KEEL_MCP_SCHEMA_DIR); "
              "only the hand-written seeds are used", file=sys.stderr)
        return []
    found = []
    for path in sorted(root.glob("*/*.json")):
        try:
            found.append((path.parent.name, json.loads(path.read_text())))
        except ValueError:
            continue
    return found


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def frames(found: list[tuple[str, object]]) -> list[bytes]:
    """JSON-RPC frames: the example messages, params examples as requests, and legacy-era shapes."""
    messages = [v for _, v in found if isinstance(v, dict) and v.get("jsonrpc") == "2.0"]
    for type_name, value in found:
        method = PARAMS_METHODS.get(type_name)
        if method and isinstance(value, dict):
            if method.startswith("notifications/"):
                messages.append({"jsonrpc": "2.0", "method": method, "params": value})
            else:
                messages.append({"jsonrpc": "2.0", "id": len(messages), "method": method, "params": value})
    messages.append(LEGACY_INITIALIZE)
    messages.append({"jsonrpc": "2.0", "method": "notifications/initialized"})
    out = [compact(m) for m in messages]
    out.append(json.dumps(LEGACY_INITIALIZE, indent=2).encode())
    out.append(compact(messages[:3]))  # a 2025-03-26 batch
    out.append(compact({**LEGACY_INITIALIZE, "id": None}))  # null id on a request
    out.append(compact(list(LEGACY_INITIALIZE.values())))  # by position
    out.append(b'{"jsonrpc":"2.0","id":"x","error":{"code":-32700,"message":"parse error"}}')
    return out


def sse_streams(frames_: list[bytes]) -> list[bytes]:
    out = [b"\x07" + b": keep-alive\n\nretry: 3000\nid: 0\ndata:\n\n"]
    for i, frame in enumerate(frames_[:40]):
        event = b"id: %d\nevent: message\ndata: %s\n\n" % (i, frame)
        out.append(bytes([i % 16]) + (event.replace(b"\n", b"\r\n") if i % 3 == 0 else event))
    multi = b"data: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"ping\"}\r\rid:\n\n"
    out.append(b"\x01" + multi)
    # Invalid UTF-8 in data: each byte becomes U+FFFD (3 bytes) and must still count against the bound.
    out.append(b"\x00data: " + b"\xff" * 400 + b"\n\n")
    return out


def stdio_streams(frames_: list[bytes]) -> list[bytes]:
    out = []
    for i in range(0, len(frames_), 4):
        group = frames_[i : i + 4]
        sep = b"\r\n" if i % 8 else b"\n"
        out.append(bytes([i % 8]) + sep.join(group) + sep + b"\n  \n")
    out.append(b"\x03" + b"x" * 100 + b"\n{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}")
    return out


def uri_templates(found: list[tuple[str, object]]) -> list[bytes]:
    templates, uris = {"file:///{path}", "weather://{city}/current{?units,lang}", "db://{+table}/{id}{#frag}",
                       "mem://{a}{b}/{c*}", "x://{/seg*}{;p}{&q}"}, {"weather://paris/current?units=c", "mem://xyz/1"}

    def walk(v: object) -> None:
        if isinstance(v, dict):
            for key, item in v.items():
                if key == "uriTemplate" and isinstance(item, str):
                    templates.add(item)
                elif key == "uri" and isinstance(item, str):
                    uris.add(item)
                else:
                    walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    for _, value in found:
        walk(value)
    return [f"{t}\n{u}".encode() for t in sorted(templates) for u in sorted(uris)]


def www_authenticate() -> list[bytes]:
    values = [
        'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"',
        'Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://x/y"',
        'DPoP algs="ES256", Bearer realm="mcp", error="invalid_token", error_description="expired"',
        'Basic realm="a\\"b", Bearer scope=read',
        'Bearer, Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        "Bearer token68abc==",
    ]
    return [v.encode() for v in values] + ["\n".join(values).encode()]


def oauth_documents() -> list[bytes]:
    docs = [
        {"resource": "https://mcp.example.com/mcp", "authorization_servers": ["https://auth.example.com"],
         "scopes_supported": ["files:read", "offline_access"]},
        {"issuer": "https://auth.example.com", "authorization_endpoint": "https://auth.example.com/authorize",
         "token_endpoint": "https://auth.example.com/token", "registration_endpoint": "https://auth.example.com/reg",
         "code_challenge_methods_supported": ["S256"], "grant_types_supported": ["authorization_code"],
         "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
         "client_id_metadata_document_supported": True, "authorization_response_iss_parameter_supported": True,
         "dpop_signing_alg_values_supported": ["ES256"], "scopes_supported": ["offline_access"]},
        {"issuer": "https://auth.example.com/tenant/", "resource": "https://mcp.example.com"},
    ]
    return [compact(d) for d in docs]


def token_responses() -> list[bytes]:
    docs = [
        {"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt", "scope": "read"},
        {"access_token": "at", "token_type": "DPoP", "expires_in": "60"},
        {"access_token": "", "token_type": "bearer"},
        {"access_token": "at", "expires_in": 18446744073709551615},
    ]
    return [compact(d) for d in docs]


def mcp_params(found: list[tuple[str, object]]) -> list[bytes]:
    schema = {"type": "object", "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "priority": {"type": "integer", "x-mcp-header": "Priority"},
        "verbose": {"type": "boolean", "x-mcp-header": "Verbose"}}}
    arguments = {"region": "us-east1", "priority": 7, "verbose": True}
    headers = "mcp-param-region: us-east1\nmcp-param-priority: 007\nMcp-Param-Verbose: true"
    out = [f"us-east1\n{json.dumps(schema)}\n{json.dumps(arguments)}\n{headers}".encode()]
    encoded = base64.b64encode("日本 ".encode()).decode()
    out.append(f"日本 \n{json.dumps(schema)}\n{{\"region\":\"日本 \"}}\nmcp-param-region: =?base64?{encoded}?=".encode())
    for type_name, value in found:
        if type_name == "Tool" and isinstance(value, dict) and isinstance(value.get("inputSchema"), dict):
            out.append(f"value\n{json.dumps(value['inputSchema'])}\n{{}}\nmcp-param-x: y".encode())
        if type_name == "CallToolRequest" and isinstance(value, dict):
            args = value.get("params", {}).get("arguments", {})
            out.append(f"=?base64?\n{json.dumps(schema)}\n{json.dumps(args)}\n{headers}".encode())
    return out


def request_states() -> list[bytes]:
    return [b"tools/call\necho\n{\"b\":1,\"a\":[true]}\nstep-1", b"prompts/get\ngreet\n{}",
            b"resources/read\nfile:///x\nnull\n\xe2\x98\x83",
            b"eyJtIjoidG9vbHMvY2FsbCJ9.AAAA", b"..", b"a.b.c"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schema-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    found = examples(args.schema_dir)
    frames_ = frames(found)
    seeds = {
        "jsonrpc_decode": frames_,
        "sse_decoder": sse_streams(frames_),
        "stdio_lines": stdio_streams(frames_),
        "uri_template": uri_templates(found),
        "www_authenticate": www_authenticate(),
        "oauth_metadata": oauth_documents(),
        "token_response": token_responses(),
        "mcp_param_headers": mcp_params(found),
        "request_state": request_states(),
    }
    written = 0
    for target, inputs in seeds.items():
        directory = args.out / target
        directory.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            path = directory / ("seed-" + hashlib.sha256(data).hexdigest()[:16])
            if not path.exists():
                path.write_bytes(data)
                written += 1
    total = sum(len(v) for v in seeds.values())
    print(f"fuzz/seeds.py: {total} seeds for {len(seeds)} targets ({written} new) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
