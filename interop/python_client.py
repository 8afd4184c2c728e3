#!/usr/bin/env python3
"""Drive a Keel server with the official MCP Python SDK (`mcp`, pinned in interop/requirements.txt).

    python_client.py [--mode legacy|modern] -- COMMAND [ARGS...]     Keel's stdio_server example, over stdio
    python_client.py [--mode legacy|modern] --url URL                Keel's http_server example, streamable HTTP

Over stdio, spawns COMMAND with `mcp.client.stdio.stdio_client`, connects a `ClientSession` and checks what Keel's
`stdio_server` example offers:

  * handshake: `legacy` sends `initialize` (a 2025-* version must be agreed), `modern` probes `server/discover`
    (2026-07-28 must be agreed);
  * tools/list: add, echo and countdown are listed, each with an object input schema;
  * add {a:2,b:3}: not an error, structuredContent {"sum": 5} and a text block that says 5;
  * echo {text:"hi"}: text "hi";
  * countdown {from:3} with a progress callback: text "liftoff after 3", progress reported;
  * add {a:"x"}: a CallToolResult with isError true, not a JSON-RPC error and not an exception.

With --url, connects with `mcp.client.streamable_http.streamable_http_client` and checks what Keel's `http_server`
example offers, after the same handshake:

  * tools/list: add and now; add {a:2,b:3}: structuredContent {"sum": 5};
  * resources/list has docs://readme; resources/read docs://readme: text/markdown "# Hello\nServed by Keel.";
  * resources/templates/list has notes://{name}; resources/read notes://kitchen: a text that mentions kitchen;
  * prompts/list has essay; prompts/get essay {topic:"ships"}: a message whose text mentions ships.

Prints one `  ok: ...` line per check; on the first mismatch prints `python_client: FAILED: <why>` and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

REQUEST_TIMEOUT = 30.0


class Mismatch(Exception):
    """A check failed; the message says what was expected and what came back."""


def ok(text: str) -> None:
    print(f"  ok: {text}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def dump(model: Any) -> str:
    """The wire form of an SDK model, for messages."""
    try:
        return json.dumps(model.model_dump(by_alias=True, mode="json", exclude_none=True), sort_keys=True)
    except AttributeError:
        return repr(model)


def texts(result: Any) -> list[str]:
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


def is_number(value: Any, expected: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == expected


async def call(session: ClientSession, name: str, arguments: dict[str, Any], **kwargs: Any) -> Any:
    try:
        return await session.call_tool(name, arguments, read_timeout_seconds=REQUEST_TIMEOUT, **kwargs)
    except MCPError as exc:
        raise Mismatch(f"tools/call {name} {json.dumps(arguments)} got a JSON-RPC error: {exc.error.code} {exc.error.message!r}"
                       f" data={json.dumps(exc.error.data)}") from exc


async def handshake(session: ClientSession, mode: str) -> None:
    if mode == "legacy":
        try:
            init = await session.initialize()
        except MCPError as exc:
            raise Mismatch(f"initialize failed: {exc.error.code} {exc.error.message!r}") from exc
        check(init.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS and init.protocol_version.startswith("2025-"),
              f"initialize agreed on {init.protocol_version!r}, expected a 2025-* version")
        check(init.capabilities.tools is not None, f"initialize result has no tools capability: {dump(init)}")
        info = init.server_info
        ok(f"initialize -> protocol {init.protocol_version}, server {info.name} {info.version}")
    else:
        try:
            disc = await session.discover()
        except MCPError as exc:
            raise Mismatch(f"server/discover failed: {exc.error.code} {exc.error.message!r}") from exc
        check(session.protocol_version in MODERN_PROTOCOL_VERSIONS,
              f"server/discover agreed on {session.protocol_version!r}, expected one of {MODERN_PROTOCOL_VERSIONS}")
        check(disc.capabilities.tools is not None, f"discover result has no tools capability: {dump(disc)}")
        info = session.server_info
        who = f"{info.name} {info.version}" if info else "(not stamped)"
        ok(f"server/discover -> protocol {session.protocol_version}, supported {disc.supported_versions}, server {who}")


def open_session(read: Any, write: Any) -> ClientSession:
    return ClientSession(
        read,
        write,
        read_timeout_seconds=REQUEST_TIMEOUT,
        client_info=Implementation(name="keel-interop-python-client", version="1"),
    )


async def request(what: str, coroutine: Any) -> Any:
    try:
        return await coroutine
    except MCPError as exc:
        raise Mismatch(f"{what} got a JSON-RPC error: {exc.error.code} {exc.error.message!r} data={json.dumps(exc.error.data)}") from exc


def resource_texts(result: Any) -> list[tuple[str, str | None, str]]:
    return [(str(c.uri), c.mime_type, c.text) for c in result.contents if getattr(c, "text", None) is not None]


async def run_http(mode: str, url: str) -> None:
    async with streamable_http_client(url) as (read, write):
        async with open_session(read, write) as session:
            await handshake(session, mode)

            # ---- tools
            listed = await request("tools/list", session.list_tools())
            tools = {tool.name: tool for tool in listed.tools}
            missing = sorted({"add", "now"} - tools.keys())
            check(not missing, f"tools/list lacks {missing}; got {sorted(tools)}")
            ok(f"tools/list -> {sorted(tools)}")
            result = await call(session, "add", {"a": 2, "b": 3})
            check(not result.is_error, f"add {{a:2,b:3}} returned isError: {dump(result)}")
            structured = result.structured_content
            check(isinstance(structured, dict) and is_number(structured.get("sum"), 5),
                  f"add {{a:2,b:3}}: structuredContent is not {{\"sum\": 5}}: {dump(result)}")
            ok(f"add {{a:2,b:3}} -> structuredContent {json.dumps(structured)}")

            # ---- resources
            listed = await request("resources/list", session.list_resources())
            uris = [str(r.uri) for r in listed.resources]
            check("docs://readme" in uris, f"resources/list lacks docs://readme; got {uris}")
            ok(f"resources/list -> {uris}")
            read_result = await request("resources/read docs://readme", session.read_resource("docs://readme"))
            got = resource_texts(read_result)
            check(got == [("docs://readme", "text/markdown", "# Hello\nServed by Keel.")],
                  f"resources/read docs://readme: expected one text/markdown text '# Hello\\nServed by Keel.': {dump(read_result)}")
            ok("resources/read docs://readme -> text/markdown '# Hello\\nServed by Keel.'")
            templates = await request("resources/templates/list", session.list_resource_templates())
            patterns = [t.uri_template for t in templates.resource_templates]
            check("notes://{name}" in patterns, f"resources/templates/list lacks notes://{{name}}; got {patterns}")
            read_result = await request("resources/read notes://kitchen", session.read_resource("notes://kitchen"))
            got = resource_texts(read_result)
            check(len(got) == 1 and got[0][0] == "notes://kitchen" and "kitchen" in got[0][2],
                  f"resources/read notes://kitchen: expected one text for notes://kitchen mentioning kitchen: {dump(read_result)}")
            ok(f"resources/templates/list -> {patterns}; resources/read notes://kitchen -> {got[0][2]!r}")

            # ---- prompts
            listed = await request("prompts/list", session.list_prompts())
            names = [p.name for p in listed.prompts]
            check("essay" in names, f"prompts/list lacks essay; got {names}")
            prompt = await request("prompts/get essay", session.get_prompt("essay", {"topic": "ships"}))
            said = [m.content.text for m in prompt.messages if getattr(m.content, "type", None) == "text"]
            check(any("ships" in text for text in said), f"prompts/get essay {{topic:ships}}: no text message mentions ships: {dump(prompt)}")
            ok(f"prompts/list -> {names}; prompts/get essay {{topic:'ships'}} -> {said}")


async def run(mode: str, command: list[str]) -> None:
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params, errlog=sys.stderr) as (read, write):
        async with open_session(read, write) as session:
            await handshake(session, mode)

            # ---- tools/list
            listed = await session.list_tools()
            tools = {tool.name: tool for tool in listed.tools}
            missing = sorted({"add", "echo", "countdown"} - tools.keys())
            check(not missing, f"tools/list lacks {missing}; got {sorted(tools)}")
            for name in ("add", "echo", "countdown"):
                schema = tools[name].input_schema
                check(isinstance(schema, dict) and schema.get("type") == "object",
                      f"tool {name}: inputSchema is not an object schema: {json.dumps(schema)}")
            check(set(tools["add"].input_schema.get("properties", {})) >= {"a", "b"},
                  f"tool add: inputSchema lacks properties a and b: {json.dumps(tools['add'].input_schema)}")
            ok(f"tools/list -> {sorted(tools)}, object input schemas")

            # ---- add
            result = await call(session, "add", {"a": 2, "b": 3})
            check(not result.is_error, f"add {{a:2,b:3}} returned isError: {dump(result)}")
            structured = result.structured_content
            check(isinstance(structured, dict) and is_number(structured.get("sum"), 5),
                  f"add {{a:2,b:3}}: structuredContent is not {{\"sum\": 5}}: {dump(result)}")
            sums = []
            for text in texts(result):
                try:
                    sums.append(json.loads(text).get("sum"))
                except (ValueError, AttributeError):
                    sums.append(text)
            check(any(is_number(s, 5) for s in sums), f"add {{a:2,b:3}}: no text block with {{\"sum\": 5}}: {dump(result)}")
            ok(f"add {{a:2,b:3}} -> structuredContent {json.dumps(structured)}, text {texts(result)}")

            # ---- echo
            result = await call(session, "echo", {"text": "hi"})
            check(not result.is_error, f"echo {{text:'hi'}} returned isError: {dump(result)}")
            check(texts(result) == ["hi"], f"echo {{text:'hi'}}: expected one text block 'hi': {dump(result)}")
            ok("echo {text:'hi'} -> 'hi'")

            # ---- countdown, with progress
            progress: list[tuple[float, float | None]] = []

            async def on_progress(value: float, total: float | None, _message: str | None) -> None:
                progress.append((value, total))

            result = await call(session, "countdown", {"from": 3}, progress_callback=on_progress)
            check(not result.is_error, f"countdown {{from:3}} returned isError: {dump(result)}")
            check(texts(result) == ["liftoff after 3"], f"countdown {{from:3}}: expected text 'liftoff after 3': {dump(result)}")
            check(bool(progress), "countdown {from:3}: no notifications/progress reached the progress callback")
            check(all(total == 3 for _, total in progress), f"countdown {{from:3}}: progress totals are not 3: {progress}")
            check(progress == sorted(progress), f"countdown {{from:3}}: progress went backwards: {progress}")
            ok(f"countdown {{from:3}} -> 'liftoff after 3', progress {[v for v, _ in progress]}")

            # ---- bad arguments must be a tool error (isError), not a protocol error
            result = await call(session, "add", {"a": "x"})
            check(result.is_error is True, f"add {{a:'x'}}: expected isError true, got {dump(result)}")
            check(bool(texts(result)), f"add {{a:'x'}}: the error result carries no text explaining it: {dump(result)}")
            ok(f"add {{a:'x'}} -> isError true: {texts(result)[0][:120]!r}")


def flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in flatten(inner)]
    return [exc]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("legacy", "modern"), default="legacy")
    parser.add_argument("--url", help="a streamable HTTP endpoint (Keel's http_server example) instead of a command")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]: the server to spawn")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if bool(command) == bool(args.url):
        parser.error("give either --url URL or -- COMMAND [ARGS...]")
    try:
        if args.url:
            anyio.run(run_http, args.mode, args.url)
        else:
            anyio.run(run, args.mode, command)
    except BaseException as exc:  # noqa: BLE001 - report anything, including exception groups from anyio
        if isinstance(exc, KeyboardInterrupt):
            raise
        leaves = flatten(exc)
        why = "; ".join(str(e) if isinstance(e, Mismatch) else f"{type(e).__name__}: {e}" for e in leaves)
        print(f"python_client: FAILED: {why}", flush=True)
        if not all(isinstance(e, Mismatch) for e in leaves):
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        return 1
    print("python_client: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
